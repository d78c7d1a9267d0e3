export async function run(_argv: string[]): Promise<number> {
  process.stderr.write('tierflow explain: not implemented yet\n');
  return 1;
}
