# A store that rewrites the very next instruction of its own block: the immediate of
# `mov $7, %edi` goes up by 2 before it runs, so the program exits with status 9, as natively
# (and not 11: the store runs once), in 5 instructions.
    .section .smc, "awx", @progbits
    .globl _start
_start:
    mov $1, %esi
    addb $2, next+1(%rip)
next:
    mov $7, %edi
    mov $60, %eax
    syscall
