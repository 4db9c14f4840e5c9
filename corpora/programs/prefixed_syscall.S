/* A syscall with a REX.W prefix (48 0f 05) is three bytes long: RCX must hold the address
 * after all three. Exits with 10 + (RCX - label), so 10 when RCX is right. */
    .globl _start
    .text
_start:
    mov $39, %eax           /* getpid */
    .byte 0x48, 0x0f, 0x05  /* rex.w syscall */
2:
    mov %rcx, %rdi
    lea 2b(%rip), %rax
    sub %rax, %rdi
    add $10, %rdi
    mov $60, %eax           /* exit */
    syscall
