# Linked with ld -N (--omagic), as the Makefile does: one RWX PT_LOAD that starts after the ELF
# header and the program headers, so that no PT_LOAD holds them. Linux runs it all the same
# (AT_PHDR is then just the load bias), and maps whole pages of the file, the ELF header with
# the first. Prints the auxiliary vector's entries about the program headers and the entry,
# "type value" in hex a line, then "0" and the first 8 bytes of the entry's page, and exits 0.
    .globl _start
    .text
_start:
    mov (%rsp), %rcx
    lea 16(%rsp,%rcx,8), %rbx       # envp: past argc, argv and argv's NULL
1:  mov (%rbx), %rax
    add $8, %rbx
    test %rax, %rax
    jnz 1b                          # rbx: the auxiliary vector
2:  mov (%rbx), %rdi
    test %rdi, %rdi
    jz 4f
    mov 8(%rbx), %rsi
    add $16, %rbx
    cmp $9, %rdi                    # AT_ENTRY
    cmove %rsi, %r12
    je 3f
    cmp $3, %rdi                    # AT_PHDR, AT_PHENT, AT_PHNUM
    jb 2b
    cmp $5, %rdi
    ja 2b
3:  call print_aux
    jmp 2b
4:  and $-4096, %r12                # the entry's page: the file's first bytes
    mov (%r12), %rsi
    xor %edi, %edi
    call print_aux
    mov $60, %eax                   # exit(0)
    xor %edi, %edi
    syscall

# Writes "t vvvvvvvvvvvvvvvv\n": rdi the type (below 16), rsi the value.
print_aux:
    sub $24, %rsp
    lea hex_digits(%rip), %r8
    movzbl (%r8,%rdi), %eax
    mov %al, (%rsp)
    movb $' ', 1(%rsp)
    mov $17, %ecx
5:  mov %rsi, %rax
    and $15, %eax
    movzbl (%r8,%rax), %eax
    mov %al, (%rsp,%rcx)
    shr $4, %rsi
    dec %ecx
    cmp $1, %ecx
    jne 5b
    movb $'\n', 18(%rsp)
    mov $1, %eax                    # write(1, buffer, 19)
    mov $1, %edi
    mov %rsp, %rsi
    mov $19, %edx
    syscall
    add $24, %rsp
    ret

hex_digits:
    .ascii "0123456789abcdef"
