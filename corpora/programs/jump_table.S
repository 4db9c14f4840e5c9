/* A jump through a table indexed by a register (`jmp *table(,%rax,8)`): the translated
 * lookup must leave RAX, RCX and RDX as they were. Exits with status 5 (from RCX). */
    .globl _start
    .text
_start:
    xor %eax, %eax
    mov $5, %ecx
    mov $9, %edx
    jmp *table(,%rax,8)
1:
    mov %ecx, %edi
    mov $60, %eax           /* exit */
    syscall
    .section .rodata
    .align 8
table:
    .quad 1b
