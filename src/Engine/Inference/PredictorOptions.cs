using Engine.Kernels;

namespace Engine.Inference;

/// <summary>How a <see cref="Predictor"/> runs; fixed when it is created, so a call never sees a setting change under it.</summary>
public sealed record PredictorOptions
{
    private readonly int _threads = WorkPartition.DefaultThreads;

    /// <summary>
    /// Threads one predict call may use (default: the processor count). A batch is split between them; a single sample
    /// lets the layers split their own work. Many callers at once each get their own share: the machine's cores are the
    /// limit, not this number. 1 keeps every call on its caller's thread.
    /// </summary>
    public int Threads
    {
        get => _threads;
        init => _threads = WorkPartition.CheckThreads(value);
    }
}
