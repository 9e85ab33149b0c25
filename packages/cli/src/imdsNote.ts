import { canTellPeerUids } from '@vault/server/client';

/**
 * What `session start --imds` and `exec --ec2-server` say where the OS cannot tell which user a
 * loopback connection belongs to (macOS, Windows: no /proc/net/tcp): an IMDS endpoint needs no
 * secret (IMDSv2's token is free for the asking), so there any local process can read it. aws-vault
 * says the same of its `--ec2-server`.
 */
export const ANY_LOCAL_PROCESS_NOTE =
  'vault: note: on this system vault cannot tell which user connects to an IMDS endpoint, so any local process can read these credentials; prefer the container endpoint (without --imds / --ec2-server), which needs its token\n';

/** Writes the note when `canTell` (this OS's check; injectable for tests) says so. */
export function noteIfAnyLocalProcessCanRead(stderr: NodeJS.WritableStream, canTell: () => boolean = canTellPeerUids): void {
  if (!canTell()) stderr.write(ANY_LOCAL_PROCESS_NOTE);
}
