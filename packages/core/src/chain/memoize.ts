/**
 * Shares one in-flight call among every concurrent caller: a hundred requests arriving while
 * credentials are being fetched cause one STS call, not a hundred.
 */
export function singleFlight<T>(fn: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  return () => {
    inFlight ??= fn().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };
}
