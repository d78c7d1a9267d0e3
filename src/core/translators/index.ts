// Provider family -> translator factory. Each family lives in its own module.
import type { ProviderType } from '../config/schema.js';
import type { TranslatorFactory } from './types.js';

const factories: Partial<Record<ProviderType, TranslatorFactory>> = {};

export function registerTranslator(type: ProviderType, factory: TranslatorFactory): void {
  factories[type] = factory;
}

export function translatorFor(type: ProviderType): TranslatorFactory {
  const f = factories[type];
  if (!f) throw new Error(`no translator for provider type ${type}`);
  return f;
}
