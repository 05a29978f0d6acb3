// Original file: proto/tern/node/v1alpha1/control.proto


export interface KernelBoot {
  /**
   * Absolute paths in the guest's namespace directory or under a shared image root.
   */
  'kernel'?: (string);
  'initrd'?: (string);
  /**
   * Kernel command line words; joined with spaces into one -append argument.
   */
  'cmdline'?: (string)[];
}

export interface KernelBoot__Output {
  /**
   * Absolute paths in the guest's namespace directory or under a shared image root.
   */
  'kernel': (string);
  'initrd': (string);
  /**
   * Kernel command line words; joined with spaces into one -append argument.
   */
  'cmdline': (string)[];
}
