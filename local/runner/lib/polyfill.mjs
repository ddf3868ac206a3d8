// Node 20 lacks Promise.withResolvers (Node >= 22), which aws-local-stepfunctions calls for
// every Task state. This module must be imported BEFORE the library (run.mjs does so).
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    value: function withResolvers() {
      let resolve;
      let reject;
      const promise = new this((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
    writable: true,
    configurable: true,
  });
}
