// Original file: proto/tern/node/v1alpha1/control.proto


export interface UserModeBackend {
  /**
   * Connect to host_address:host_port on the node to reach guest_port of the guest (TCP only).
   */
  'hostAddress'?: (string);
  'hostPort'?: (number);
  'guestPort'?: (number);
}

export interface UserModeBackend__Output {
  /**
   * Connect to host_address:host_port on the node to reach guest_port of the guest (TCP only).
   */
  'hostAddress': (string);
  'hostPort': (number);
  'guestPort': (number);
}
