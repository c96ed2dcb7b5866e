import type { z } from 'zod';

/**
 * A zod error map in an operator's words, for the start-up report: "is required", "must be a
 * string", "must be one of "form", "json"", never zod's "Invalid input: expected string,
 * received undefined". Passed per parse (`schema.safeParse(value, { error: plainIssueWords })`),
 * so a message a schema states itself still wins.
 */
export const plainIssueWords: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${TYPE_WORDS[issue.expected] ?? `a ${issue.expected}`}`;
    case 'invalid_value':
      return issue.values.length === 1
        ? `must be ${JSON.stringify(issue.values[0])}`
        : `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      return `must ${bound(issue.origin, issue.minimum, issue.inclusive, 'at least', 'more than')}`;
    case 'too_big':
      return `must ${bound(issue.origin, issue.maximum, issue.inclusive, 'at most', 'less than')}`;
    case 'invalid_format':
      if (issue.format === 'regex' && issue.pattern) return `must match ${issue.pattern}`;
      return `must be ${FORMAT_WORDS[issue.format] ?? `a valid ${issue.format}`}`;
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}`;
    case 'unrecognized_keys':
      return `has fields that are not known: ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    case 'invalid_union': {
      // A discriminated union names the values its discriminator takes; its input is the object.
      const { options, discriminator } = issue as { options?: unknown[]; discriminator?: string };
      if (Array.isArray(options) && options.length) {
        const values = options.map((v) => JSON.stringify(v)).join(', ');
        const input = issue.input as Record<string, unknown> | undefined;
        const missing = discriminator !== undefined && input?.[discriminator] === undefined;
        return missing ? `is required: one of ${values}` : `must be one of ${values}`;
      }
      return 'does not match any of the accepted forms';
    }
    case 'invalid_key':
      return 'has a key that is not accepted';
    case 'invalid_element':
      return 'has an item that is not accepted';
    default:
      return 'has a value that is not accepted';
  }
};

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'an object',
  array: 'an array',
  null: 'null',
};

const FORMAT_WORDS: Record<string, string> = {
  url: 'an absolute URL',
  email: 'an e-mail address',
  uuid: 'a UUID',
  ipv4: 'an IPv4 address',
  ipv6: 'an IPv6 address',
};

function bound(
  origin: string,
  limit: number | bigint,
  inclusive: boolean | undefined,
  inclusiveWords: string,
  exclusiveWords: string,
): string {
  const words = inclusive === false ? exclusiveWords : inclusiveWords;
  if (origin === 'string') return `have ${words} ${limit} characters`;
  if (origin === 'array' || origin === 'set') return `have ${words} ${limit} items`;
  return `be ${words} ${limit}`;
}
