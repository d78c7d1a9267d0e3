export async function run(_argv: string[]): Promise<number> {
  process.stderr.write('tierflow serve: not implemented yet\n');
  return 1;
}
