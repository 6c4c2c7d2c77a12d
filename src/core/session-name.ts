/** Session names become directory names, so only a safe alphabet is allowed (as Aspera). */
const NAME_RE = /^[A-Za-z0-9_-]+$/;

export function sessionNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'the session name is empty';
  if (name.length > 200) return 'the session name is longer than 200 characters';
  if (!NAME_RE.test(name)) {
    return `the session name '${name}' may only contain letters A-Z a-z, digits 0-9, '_' and '-'`;
  }
  return undefined;
}
