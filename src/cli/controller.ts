export async function run(_argv: string[]): Promise<number> {
  process.stderr.write('tierflow controller: not implemented yet\n');
  return 1;
}
