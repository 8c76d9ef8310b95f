namespace Engine.Cli;

/// <summary>
/// Ctrl-C (SIGINT). While a command runs work that checks <see cref="Token"/> (training, fine-tuning), the first Ctrl-C
/// cancels it: the command stops at the next batch, writes nothing, reports "interrupted; nothing was written." and exits
/// with 130. Elsewhere (and on a second Ctrl-C) the process ends at once, exit code 130, after a line on standard error.
/// </summary>
internal static class Interruption
{
    private static readonly CancellationTokenSource Source = new();
    private static int _cooperative;

    /// <summary>Cancelled by the first Ctrl-C during <see cref="Cooperate"/>.</summary>
    public static CancellationToken Token => Source.Token;

    public static void Install() => Console.CancelKeyPress += (_, e) =>
    {
        if (Volatile.Read(ref _cooperative) > 0 && !Source.IsCancellationRequested)
        {
            e.Cancel = true;   // keep running: the work stops at its next check and the command reports it
            Source.Cancel();
            return;
        }
        CliErrors.Report("interrupted.");
    };

    /// <summary>Marks the span in which the running work checks <see cref="Token"/>; dispose it when the work ends.</summary>
    public static IDisposable Cooperate()
    {
        Interlocked.Increment(ref _cooperative);
        return new Scope();
    }

    private sealed class Scope : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Interlocked.Decrement(ref _cooperative);
            }
        }
    }
}
