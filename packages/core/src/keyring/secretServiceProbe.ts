import { VaultError } from '../errors.js';
import { BUS, BUS_PATH, DbusError, DbusTimeout, MiniDbus, UnsupportedAddress } from './dbusWire.js';
import { FILE_REMEDY, oneLine } from './keychainRemedy.js';

/**
 * The Secret Service check (Linux) that runs before keytar: keytar/libsecret cannot report a
 * locked collection (see keytarKeyring.ts), so this asks the session bus directly whether a
 * Secret Service is there, whether the default collection is locked and whether a vault item sits
 * in a locked one — without ever triggering an unlock prompt.
 */

const SECRETS = 'org.freedesktop.secrets';
const SECRETS_PATH = '/org/freedesktop/secrets';
const SERVICE_IFACE = 'org.freedesktop.Secret.Service';
const COLLECTION_IFACE = 'org.freedesktop.Secret.Collection';
const PROPERTIES_IFACE = 'org.freedesktop.DBus.Properties';

const LOCKED_HINT = `unlock it (log in to the desktop session, or unlock the "Login" keyring in seahorse) or start gnome-keyring unlocked, ${FILE_REMEDY}`;

/**
 * Resolves when keytar can be used; rejects with KEYRING_UNAVAILABLE / KEYRING_LOCKED otherwise.
 * Bus addresses it cannot speak to (tcp:, launchd:) skip the check and leave it to keytar.
 */
export async function checkSecretService(address: string, mode: 'read' | 'write', attributes: Record<string, string>, deadline: number): Promise<void> {
  let bus: MiniDbus | undefined;
  try {
    try {
      bus = await MiniDbus.connect(address, deadline);
    } catch (error) {
      if (error instanceof UnsupportedAddress) return;
      throw new VaultError('KEYRING_UNAVAILABLE', `cannot connect to the D-Bus session bus at ${address} (${describeNetError(error)})`, {
        hint: `run vault in a live desktop or D-Bus session (DBUS_SESSION_BUS_ADDRESS is stale), ${FILE_REMEDY}`,
        cause: error,
      });
    }
    const [hasOwner] = await bus.call(BUS, BUS_PATH, BUS, 'NameHasOwner', 's', [SECRETS]);
    if (hasOwner !== true) {
      const [activatable] = await bus.call(BUS, BUS_PATH, BUS, 'ListActivatableNames', '', []);
      if (!Array.isArray(activatable) || !activatable.includes(SECRETS)) {
        throw new VaultError('KEYRING_UNAVAILABLE', 'no Secret Service on the D-Bus session bus (nothing provides org.freedesktop.secrets)', {
          hint: `start gnome-keyring (\`gnome-keyring-daemon --start --components=secrets\`) or KeePassXC's Secret Service, ${FILE_REMEDY}`,
        });
      }
    }
    // Either call may start the service through D-Bus activation.
    const [defaultPath] = await bus.call(SECRETS, SECRETS_PATH, SERVICE_IFACE, 'ReadAlias', 's', ['default']);
    if (typeof defaultPath !== 'string' || defaultPath === '/') {
      if (mode === 'write') {
        throw new VaultError('KEYRING_UNAVAILABLE', 'the Secret Service has no default keyring to store into', {
          hint: `create one (log in to a desktop session, or \`gnome-keyring-daemon --unlock\`), ${FILE_REMEDY}`,
        });
      }
    } else {
      const [locked] = await bus.call(SECRETS, defaultPath, PROPERTIES_IFACE, 'Get', 'ss', [COLLECTION_IFACE, 'Locked']);
      if (locked === true) {
        const [label] = await bus.call(SECRETS, defaultPath, PROPERTIES_IFACE, 'Get', 'ss', [COLLECTION_IFACE, 'Label']).catch(() => [undefined]);
        const name = typeof label === 'string' && label !== '' ? label : defaultPath.split('/').pop();
        throw new VaultError('KEYRING_LOCKED', `the keychain is locked (Secret Service keyring "${name}")`, { hint: LOCKED_HINT });
      }
    }
    const [, lockedItems] = await bus.call(SECRETS, SECRETS_PATH, SERVICE_IFACE, 'SearchItems', 'a{ss}', [Object.entries(attributes)]);
    if (Array.isArray(lockedItems) && lockedItems.length > 0) {
      throw new VaultError('KEYRING_LOCKED', 'the keychain is locked (a vault item is in a locked Secret Service keyring)', { hint: LOCKED_HINT });
    }
  } catch (error) {
    if (error instanceof VaultError) throw error;
    if (error instanceof DbusError) {
      throw new VaultError('KEYRING_UNAVAILABLE', `the Secret Service failed: ${oneLine(error.message)}`, {
        hint: `check that gnome-keyring (or another Secret Service) is running, ${FILE_REMEDY}`,
        cause: error,
      });
    }
    if (error instanceof DbusTimeout) {
      throw new VaultError('KEYRING_UNAVAILABLE', 'the D-Bus session bus or the Secret Service did not answer in time', {
        hint: `check that gnome-keyring (or another Secret Service) is running, ${FILE_REMEDY}`,
      });
    }
    throw new VaultError('KEYRING_UNAVAILABLE', `the D-Bus session bus failed: ${oneLine(describeNetError(error))}`, {
      hint: `check the desktop or D-Bus session, ${FILE_REMEDY}`,
      cause: error,
    });
  } finally {
    bus?.close();
  }
}

function describeNetError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.message : String(error);
}
