// The controller core: informers, work queue, controllers, leader election, manager, conditions.
export * from './backoff.js';
export * from './clock.js';
export * from './conditions.js';
export * from './controller.js';
export * from './handlers.js';
export * from './informer.js';
export * from './leader.js';
export * from './logger.js';
export * from './manager.js';
export * from './metrics.js';
export * from './queue.js';
