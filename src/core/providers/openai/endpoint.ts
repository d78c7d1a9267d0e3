// Where an OpenAI provider's requests go when it sets no baseUrl.
export const OPENAI_DEFAULT_BASE_URL = 'https://api.openai.com/v1';
