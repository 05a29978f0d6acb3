// Original file: proto/tern/console/v1alpha1/console.proto


export interface AttachRequest {
  'namespace'?: (string);
  'name'?: (string);
  /**
   * Send what the console wrote before (the log's last 16 KiB) first.
   */
  'history'?: (boolean);
}

export interface AttachRequest__Output {
  'namespace': (string);
  'name': (string);
  /**
   * Send what the console wrote before (the log's last 16 KiB) first.
   */
  'history': (boolean);
}
