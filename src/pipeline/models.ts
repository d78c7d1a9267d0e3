// GET /v1/models: the virtual models (policies) and every enabled configured model.
import type { CompiledConfig } from '../core/config/compiled.js';

export function listModels(config: CompiledConfig) {
  const data: { id: string; object: 'model'; created: number; owned_by: string }[] = [];
  for (const [name, policy] of config.virtualModels) {
    data.push({ id: name, object: 'model', created: 0, owned_by: `tierflow:${policy.name}` });
  }
  for (const [name, models] of config.modelsByName) {
    data.push({
      id: name,
      object: 'model',
      created: 0,
      owned_by: models.map((m) => m.provider.name).join(','),
    });
  }
  return { object: 'list', data };
}
