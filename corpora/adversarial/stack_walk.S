/* Walks RSP down 64 KiB at a time until it wraps into the kernel half, then stores
 * through it. Must end with SIGSEGV, as at ring 3; at ring 0 the sandbox stops it at the
 * first move out of the user half. */
    .globl _start
    .text
_start:
    mov $0x100000, %rsp
    mov $0x800e, %rcx
1:
    sub $0x10000, %rsp
    dec %rcx
    jnz 1b
    movq $0x41414141, (%rsp)
    mov $7, %edi
    mov $60, %eax           /* exit */
    syscall
