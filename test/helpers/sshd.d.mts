export function sshdConfig(base: string, port: number, hostKey: string): string;
export function sshClientOptions(clientKey: string): string[];
