// Where an Anthropic provider's requests go: {base}/messages.
export const ANTHROPIC_DEFAULT_BASE_URL = 'https://api.anthropic.com/v1';
