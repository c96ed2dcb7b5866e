/** What a person reads about an error: what happened, and what to do about it. */
export interface ErrorText {
  title: string;
  explanation: string;
  action: string;
}

const START_AGAIN = 'Go back to your application and start the connection again.';

/**
 * Plain language for Latchkey's own codes (CONTRACT.md "Errors") and for the `error` values a
 * provider may send back to the callback (RFC 6749 §4.1.2.1). The code itself is always shown
 * next to this text, so that support can tell the cases apart.
 */
const TEXTS: Readonly<Record<string, ErrorText>> = {
  access_denied: {
    title: 'You declined the connection',
    explanation: 'Nothing was stored, and the service shared nothing with us.',
    action: 'You can connect whenever you are ready.',
  },
  invalid_state: {
    title: 'This sign-in link is no longer valid',
    explanation:
      'A sign-in works once, for 10 minutes, in the browser that started it. This one expired, was already used, or was finished in another browser.',
    action: 'Start again from the Connect page or from your application.',
  },
  unauthorized: {
    title: 'This needs an API key',
    explanation: 'This address is for applications that hold a Latchkey API key, not for a browser.',
    action: 'Go to the Connect page, or start from your application.',
  },
  link_expired: {
    title: 'This connect link has expired',
    explanation:
      'A connect link works once and for 15 minutes. This one is older than that, or it is not a link Latchkey issued.',
    action: 'Go back to your application and start the connection again: it gives you a new link.',
  },
  invalid_request: {
    title: 'This request could not be handled',
    explanation: 'Part of the request was missing or not valid.',
    action: `${START_AGAIN} If it keeps happening, contact its support and mention the code below.`,
  },
  forbidden: {
    title: 'This is not allowed',
    explanation: 'You do not have permission to do this.',
    action: START_AGAIN,
  },
  unknown_provider: {
    title: 'This service is not available',
    explanation: 'Latchkey does not know this service.',
    action: 'Choose a service on the Connect page.',
  },
  provider_not_enabled: {
    title: 'This service is not set up yet',
    explanation: 'This service has not been enabled on this Latchkey.',
    action: 'Ask your administrator to enable it, or choose another service.',
  },
  connection_not_found: {
    title: 'This connection does not exist',
    explanation: 'There is no connection with this name.',
    action: START_AGAIN,
  },
  not_found: {
    title: 'Page not found',
    explanation: 'There is nothing at this address.',
    action: 'Go to the Connect page.',
  },
  reauth_required: {
    title: 'Please connect again',
    explanation: 'The service no longer accepts the saved sign-in.',
    action: 'Connect the service again to continue.',
  },
  payload_too_large: {
    title: 'That was too much data',
    explanation: 'The form sent more data than Latchkey accepts.',
    action: 'Check what you pasted and try again.',
  },
  rate_limited: {
    title: 'Too many attempts',
    explanation: 'We received too many requests from your network in a short time.',
    action: 'Wait a minute, then try again.',
  },
  provider_error: {
    title: 'The service did not complete the connection',
    explanation:
      'The service answered with an error, or not at all, while we finished signing you in. Nothing was stored.',
    action: 'Wait a moment and try again.',
  },
  upstream_timeout: {
    title: 'The service took too long to answer',
    explanation: 'Nothing was stored.',
    action: 'Wait a moment and try again.',
  },
  store_unavailable: {
    title: 'Latchkey is briefly unavailable',
    explanation: 'Latchkey cannot reach its storage right now, so nothing was changed.',
    action: 'Please try again in a moment.',
  },
  internal_error: {
    title: 'Something went wrong on our side',
    explanation: 'The connection could not be completed.',
    action: 'Please try again. If it keeps happening, contact support and mention the code below.',
  },
  // Codes a provider may put in `error=` on its way back (RFC 6749 §4.1.2.1).
  server_error: {
    title: 'The service had a problem',
    explanation: 'It could not complete the sign-in. Nothing was stored.',
    action: 'Wait a moment and try again.',
  },
  temporarily_unavailable: {
    title: 'The service is busy',
    explanation: 'It could not complete the sign-in right now. Nothing was stored.',
    action: 'Wait a moment and try again.',
  },
  invalid_scope: {
    title: 'The service refused the requested access',
    explanation: 'It does not grant the permissions this integration asks for. Nothing was stored.',
    action: 'Contact support and mention the code below: the integration needs attention.',
  },
  unauthorized_client: {
    title: 'The service does not accept this integration',
    explanation: 'It refused to let this integration sign you in. Nothing was stored.',
    action: 'Contact support and mention the code below: the integration needs attention.',
  },
  unsupported_response_type: {
    title: 'The service does not support this kind of sign-in',
    explanation: 'It refused the way this integration asks to sign you in. Nothing was stored.',
    action: 'Contact support and mention the code below: the integration needs attention.',
  },
};

/**
 * What happened, when one code covers several cases that a person must tell apart: an expired
 * link and a used one are both `link_expired`; having no link at all is `invalid_request`.
 */
const REASON_TEXTS: Readonly<Record<string, ErrorText>> = {
  'link_expired:used': {
    title: 'This connect link was already used',
    explanation:
      'A connect link works once, and this one has been used already, in this browser or another. If that was you, the account may already be connected.',
    action: 'Go back to your application to check, or start the connection again there for a new link.',
  },
  'invalid_request:missing': {
    title: 'Connect from your application',
    explanation:
      'Accounts are connected here through a link from your application, which tells Latchkey which account to connect. This address has no such link.',
    action: 'Go back to your application and use its Connect button or link.',
  },
  'invalid_request:other_provider': {
    title: 'This connect link is for another service',
    explanation: 'The link was issued to connect a different service than the one in this address. It was not used up.',
    action: 'Use the link exactly as your application gave it, or start the connection again there.',
  },
};

const FALLBACK: ErrorText = {
  title: 'The connection could not be completed',
  explanation: 'The service refused the request. This usually means the integration needs attention.',
  action: 'Please try again later. If it keeps happening, contact support and mention the code below.',
};

const has = (table: Readonly<Record<string, ErrorText>>, key: string) =>
  Object.prototype.hasOwnProperty.call(table, key);

/**
 * Plain-language text for an error code, or for one `reason` under it (see REASON_TEXTS);
 * unknown codes get a generic text (the code is shown beside it).
 */
export function errorTextFor(code: string, reason?: string): ErrorText {
  if (reason !== undefined && has(REASON_TEXTS, `${code}:${reason}`)) return REASON_TEXTS[`${code}:${reason}`]!;
  return has(TEXTS, code) ? TEXTS[code]! : FALLBACK;
}

/** One sentence for an error code: what happened and what to do. */
export function describeError(code: string): string {
  const text = errorTextFor(code);
  return `${text.explanation} ${text.action}`;
}
