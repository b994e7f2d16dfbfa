/** The CLI's exit codes, the same for every command. */
export const ExitCodes = {
  /** The command did what it was asked (the service stopped cleanly; `check` found nothing wrong). */
  ok: 0,
  /** It failed, or found something wrong (`check`): the message says what. */
  failed: 1,
  /** The configuration or the command line is invalid: nothing was done. */
  usage: 2,
} as const;
