/* The speedup worked out by hand: 10,000 getppid calls, each after 50 nops, then exit.
 * Guest instructions: 1 + 10,000 x (50 + 4) + 3 = 540,004; syscalls: 10,001.
 * tests/speedup.rs checks the report against that arithmetic. */
    .globl _start
    .text
_start:
    mov $10000, %ebx
1:
    .rept 50
    nop
    .endr
    mov $110, %eax          /* getppid */
    syscall
    dec %ebx
    jnz 1b
    mov $60, %eax           /* exit */
    xor %edi, %edi
    syscall
