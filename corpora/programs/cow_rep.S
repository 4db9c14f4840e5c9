/* Copy-on-write faults inside a rep instruction, with exact instruction counts (issue 9).
 * The parent touches two pages, so that they have frames, and forks. The child's rep stosb
 * fills the two pages it now shares with its parent: its first iteration faults at the end
 * of a longer block, and iteration 4097 faults again on the second page. Each side counts
 * the rep once, however often it is interrupted.
 * Guest instructions: 4 before the fork, then the child 9 and the parent 13.
 * Exit status: the parent's first byte of the buffer, 0 (the child's writes are its own). */
    .globl _start
    .text
_start:
    movb $0, buffer(%rip)
    movb $0, buffer+4096(%rip)
    mov $57, %eax               /* fork */
    syscall
    test %rax, %rax
    jnz parent
    lea buffer(%rip), %rdi
    mov $8192, %ecx
    mov $0x41, %al
    rep stosb
    mov $60, %eax               /* exit(0) */
    xor %edi, %edi
    syscall
parent:
    mov %rax, %rdi              /* wait4(child, NULL, 0, NULL) */
    mov $61, %eax
    xor %esi, %esi
    xor %edx, %edx
    xor %r10d, %r10d
    syscall
    movzbl buffer(%rip), %edi   /* exit(buffer[0] + buffer[8191]) */
    movzbl buffer+8191(%rip), %eax
    add %eax, %edi
    mov $60, %eax
    syscall

    .bss
    .balign 4096
buffer:
    .zero 8192
