# The KVM probe firmware embedded in accel.ts (KVM_PROBE_CODE): from the reset vector it enters protected mode,
# builds an identity-mapped page table, enables long mode and paging, and then writes 0x42 to isa-debug-exit
# (QEMU exits with status 0x42*2+1 = 133). A KVM that can run real mode only (as some paravirtual KVM hosts
# do, where a normal kernel then hangs at its first mode switch) never gets there.
# Rebuild: as --32 -o p.o kvm-probe.S && ld -m elf_i386 -Ttext=0xf0000 -o p.elf p.o && objcopy -O binary p.elf p.bin
# then take bytes 0..gdt_desc+6 as KVM_PROBE_CODE; the reset vector bytes are at 0xfff0.
.code16
.globl _start
_start:
  cli
  mov $0xf000, %ax
  mov %ax, %ds
  lgdtl (gdt_desc - _start)
  mov %cr0, %eax
  or $1, %eax
  mov %eax, %cr0
  ljmpl $0x08, $pm32
.code32
pm32:
  mov $0x10, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %ss
  mov $0x1000, %edi
  xor %eax, %eax
  mov $3072, %ecx
  rep stosl
  movl $0x2003, 0x1000
  movl $0x3003, 0x2000
  movl $0x83, 0x3000
  mov $0x1000, %eax
  mov %eax, %cr3
  mov %cr4, %eax
  or $0x20, %eax
  mov %eax, %cr4
  mov $0xC0000080, %ecx
  rdmsr
  or $0x100, %eax
  wrmsr
  mov %cr0, %eax
  or $0x80000000, %eax
  mov %eax, %cr0
  ljmp $0x18, $lm64
.code64
lm64:
  mov $0x42, %al
  out %al, $0xf4
1: hlt
  jmp 1b
.p2align 3
gdt:
  .quad 0
  .quad 0x00cf9a000000ffff
  .quad 0x00cf92000000ffff
  .quad 0x00af9a000000ffff
gdt_end:
gdt_desc:
  .word gdt_end - gdt - 1
  .long gdt
.code16
.org 0xfff0
  ljmp $0xf000, $0
.org 0x10000
