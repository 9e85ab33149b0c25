/** Shapes AWS accepts, so a typo fails here with a clear line instead of deep inside an STS call. */
export const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;
export const MFA_SERIAL = /^(arn:aws[a-z-]*:iam::\d{12}:(mfa|u2f)\/[\w+=,.@/-]{1,512}|[\w+=/:,.@-]{9,256})$/;
export const ROLE_SESSION_NAME = /^[\w+=,.@-]{2,64}$/;
export const EXTERNAL_ID = /^[\w+=,.@:/-]{2,1224}$/;
/**
 * An AWS region name: lower-case words joined by hyphens, ending in a number. This is the shape
 * of every partition's regionRegex in the SDK's partitions data (`^(us|eu|ap|…)-\w+-\d+$`,
 * `^cn-…`, `^us-iso-…`, `^us-isob-…`, `^eu-isoe-…`, `^us-isof-…`, `^eusc-(de)-…`, `^us-gov-…`),
 * without naming the prefixes, so a region of a new partition (eusc-de-east-1) is accepted as the
 * SDK accepts it; plus `aws-global`, the STS ruleset's name for the global endpoint.
 */
export const REGION = /^(?:[a-z]{2,}(?:-[a-z]+)+-\d{1,2}|aws-global)$/;
export const SOURCE_IDENTITY = /^[\w+=,.@-]{2,64}$/;
export const TAG_KEY = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$/u;
export const TAG_VALUE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$/u;
/** Six digits: what virtual and hardware TOTP devices produce and STS accepts. */
export const MFA_CODE = /^\d{6}$/;
/** Long-term (AKIA) or temporary (ASIA) key ids: upper-case letters and digits, 16–128 long. */
export const ACCESS_KEY_ID = /^[A-Z0-9]{16,128}$/;

/** AssumeRole accepts 15 min to 12 h (the role's maximum decides within that). */
export const MIN_DURATION_SECONDS = 900;
export const MAX_ROLE_DURATION_SECONDS = 43_200;
/** GetSessionToken accepts up to 36 h for IAM users. */
export const MAX_SESSION_TOKEN_DURATION_SECONDS = 129_600;
/** AWS caps role chaining (a role assumed from a role's credentials) at one hour. */
export const ROLE_CHAINING_MAX_SECONDS = 3_600;
