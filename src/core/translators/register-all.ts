// Side-effect imports: each translator module registers itself for its provider types.
// Keep this a plain list; import this module once before calling translatorFor().
import './openai.js';
import './anthropic.js';
import './gemini.js';
import './azure-openai.js';
import './bedrock.js';
