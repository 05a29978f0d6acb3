// Original file: proto/tern/node/v1alpha1/control.proto


export interface KernelBoot {
  /**
   * Absolute paths under one of the daemon's allowed roots.
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
   * Absolute paths under one of the daemon's allowed roots.
   */
  'kernel': (string);
  'initrd': (string);
  /**
   * Kernel command line words; joined with spaces into one -append argument.
   */
  'cmdline': (string)[];
}
