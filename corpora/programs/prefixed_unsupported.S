/* An unsupported syscall (io_uring_setup) with a REX.W prefix, at 0x401005: both modes
 * must name that address, not the one after the prefix. */
    .globl _start
    .text
_start:
    mov $425, %eax          /* io_uring_setup */
    .byte 0x48, 0x0f, 0x05  /* rex.w syscall */
    mov $60, %eax           /* exit */
    syscall
