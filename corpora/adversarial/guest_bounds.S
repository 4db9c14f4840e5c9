/* The guest's own MPX instruction (bndmk) must not change the sandbox's bounds register:
 * the store to the kernel half that follows must still end with SIGSEGV. */
    .globl _start
    .text
_start:
    mov $-1, %rax
    .byte 0xf3, 0x0f, 0x1b, 0x00    /* bndmk (%rax), %bnd0 */
    mov $0xffffffff80020000, %rbx
    movq $1, (%rbx)
    mov $7, %edi
    mov $60, %eax           /* exit */
    syscall
