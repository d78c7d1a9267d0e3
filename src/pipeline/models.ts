// GET /v1/models and GET /v1/models/{id}: the virtual models (policies) and every enabled
// configured model (chat and embedding models); with a virtual key that names its allowed models, only those.
import type { CompiledConfig, CompiledVirtualKey } from '../core/config/compiled.js';
import { ApiError } from '../core/errors.js';

export interface ModelEntry {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

export function listModels(config: CompiledConfig, key?: CompiledVirtualKey) {
  const allowed = key?.allowedModels;
  const data: ModelEntry[] = [];
  for (const name of config.virtualModels.keys()) {
    if (!allowed || allowed.has(name)) data.push(retrieveModel(config, name)!);
  }
  for (const byName of [config.modelsByName, config.embeddingModelsByName]) {
    for (const [name, models] of byName) {
      if (!allowed || allowed.has(name)) data.push(retrieveModel(config, name)!);
      else for (const m of models) if (allowed.has(m.id)) data.push(retrieveModel(config, m.id)!);
    }
  }
  return { object: 'list' as const, data };
}

/** One model the key may use by that name (a virtual model, a model name, or provider/model), or undefined. */
export function retrieveModel(
  config: CompiledConfig,
  id: string,
  key?: CompiledVirtualKey,
): ModelEntry | undefined {
  if (key?.allowedModels && !key.allowedModels.has(id)) return undefined;
  const policy = config.virtualModels.get(id);
  if (policy) return entry(id, `tierflow:${policy.name}`);
  const named = config.modelsByName.get(id) ?? config.embeddingModelsByName.get(id);
  if (named) return entry(id, named.map((m) => m.provider.name).join(','));
  const model = config.models.get(id) ?? config.embeddingModels.get(id);
  if (model) return entry(id, model.provider.name);
  return undefined;
}

export function modelNotFound(id: string): ApiError {
  return new ApiError(
    404,
    `The model '${id}' does not exist or you do not have access to it.`,
    'invalid_request_error',
    'model_not_found',
    'model',
  );
}

function entry(id: string, ownedBy: string): ModelEntry {
  return { id, object: 'model', created: 0, owned_by: ownedBy };
}
