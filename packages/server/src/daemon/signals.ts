/** Stops the daemon on SIGTERM and SIGINT (once each); returns what removes the handlers again. */
export function stopOnSignals(stop: (signal: NodeJS.Signals) => void): () => void {
  const onSignal = (signal: NodeJS.Signals) => stop(signal);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  return () => {
    process.removeListener('SIGTERM', onSignal);
    process.removeListener('SIGINT', onSignal);
  };
}
