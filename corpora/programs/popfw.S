/* A 16-bit popf (66 9d), whose operand is two bytes: the virtualized popf must pop two
 * bytes, not eight. Exits with status 7. */
    .globl _start
    .text
_start:
    pushw $0x202
    .byte 0x66, 0x9d        /* popfw */
    mov $7, %edi
    mov $60, %eax           /* exit */
    syscall
