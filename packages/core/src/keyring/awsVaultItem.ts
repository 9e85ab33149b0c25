/**
 * The item aws-vault's keyring library stores, as Go's encoding/json writes it: the value is the
 * base64 `Data` field. The file backend encrypts this JSON, the pass backend hands it to `pass`;
 * both read and write it here, so a store aws-vault filled reads the same through either.
 */
interface ItemJson {
  Key: string;
  Data: string | null;
  Label: string;
  Description: string;
  KeychainNotTrustApplication: boolean;
  KeychainNotSynchronizable: boolean;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes that are not an aws-vault item; `cause` is the parse error when there was one. */
export class NotAnAwsVaultItem extends Error {}

export function encodeAwsVaultItem(key: string, value: string, label: string | undefined): string {
  const item: ItemJson = {
    Key: key,
    Data: Buffer.from(value, 'utf8').toString('base64'),
    Label: label ?? '',
    Description: '',
    KeychainNotTrustApplication: false,
    KeychainNotSynchronizable: false,
  };
  return JSON.stringify(item);
}

/** The value an item holds ('' for a null or missing Data); throws NotAnAwsVaultItem otherwise. */
export function decodeAwsVaultItem(bytes: Uint8Array): string {
  let item: unknown;
  try {
    item = JSON.parse(strictUtf8.decode(bytes));
  } catch (cause) {
    throw new NotAnAwsVaultItem('not JSON', { cause });
  }
  if (typeof item !== 'object' || item === null) throw new NotAnAwsVaultItem('not an object');
  // Go's encoding/json matches field names case-insensitively; so do we.
  const field = Object.keys(item).find((k) => k.toLowerCase() === 'data');
  const data = field === undefined ? null : (item as Record<string, unknown>)[field];
  if (data === null || data === undefined) return '';
  if (typeof data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(data)) throw new NotAnAwsVaultItem('Data is not base64');
  try {
    return strictUtf8.decode(Buffer.from(data, 'base64'));
  } catch (cause) {
    throw new NotAnAwsVaultItem('Data is not UTF-8', { cause });
  }
}
