/* An iretq whose new RSP is in the kernel half: the next stack access must end with
 * SIGSEGV, as at ring 3, and never reach kernel memory. */
    .globl _start
    .text
_start:
    mov %rsp, %rbx
    pushq $0x2b             /* ss */
    mov $0xffffffff80020100, %rax
    pushq %rax              /* rsp */
    pushfq
    pushq $0x33             /* cs */
    lea 1f(%rip), %rax
    pushq %rax              /* rip */
    iretq
1:
    movq $5, 8(%rsp)
    mov %rbx, %rsp
    mov $7, %edi
    mov $60, %eax           /* exit */
    syscall
