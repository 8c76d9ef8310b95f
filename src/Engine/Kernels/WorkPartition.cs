namespace Engine.Kernels;

/// <summary>
/// Work that owns the outputs of a contiguous range of items, so partitions never write the same element
/// (llm.c's rule: parallelise by output ownership, no locks, no atomics).
/// </summary>
public interface IPartitionedWork
{
    /// <summary>Processes items [<paramref name="start"/>, <paramref name="end"/>) as partition <paramref name="partition"/>.</summary>
    void Invoke(int partition, int start, int end);
}

/// <summary>
/// Splits a range of items into at most <see cref="Threads"/> contiguous partitions and runs them on the caller's
/// thread and persistent worker threads (<see cref="WorkerPool"/>: struct work, nothing allocated per run); one
/// partition runs inline.
/// The split depends only on the item count and thread count, so results are reproducible run after run.
/// </summary>
public static class WorkPartition
{
    private static int s_threads = Environment.ProcessorCount;

    /// <summary>The number of threads kernels may use (default: the processor count).</summary>
    public static int Threads
    {
        get => s_threads;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1, nameof(Threads));
            s_threads = value;
        }
    }

    /// <summary>How many partitions <see cref="Run{TWork}"/> makes of <paramref name="count"/> items in steps of <paramref name="granularity"/>.</summary>
    public static int PartitionCount(int count, int granularity = 1)
    {
        int units = (count + granularity - 1) / Math.Max(granularity, 1);
        return Math.Clamp(Math.Min(units, s_threads), 1, int.MaxValue);
    }

    /// <summary>
    /// Runs <paramref name="work"/> over items [0, <paramref name="count"/>) in <see cref="PartitionCount"/> partitions whose
    /// boundaries are multiples of <paramref name="granularity"/> (so a GEMM split lands on micro-tile edges).
    /// </summary>
    public static void Run<TWork>(int count, int granularity, in TWork work)
        where TWork : struct, IPartitionedWork
    {
        if (count <= 0)
        {
            return;
        }
        int parts = PartitionCount(count, granularity);
        if (parts == 1)
        {
            work.Invoke(0, 0, count);
            return;
        }
        if (!WorkerPool.TryRun(work, count, granularity, parts))
        {
            // The pool is serving another run (a concurrent caller, or this is nested inside a partition): do the same
            // partitions here, one after another.
            for (int p = 0; p < parts; p++)
            {
                (int start, int end) = Bounds(p, parts, count, granularity);
                if (start < end)
                {
                    work.Invoke(p, start, end);
                }
            }
        }
    }

    /// <summary>The item range [start, end) of partition <paramref name="partition"/>.</summary>
    public static (int Start, int End) Bounds(int partition, int parts, int count, int granularity)
    {
        int units = (count + granularity - 1) / granularity;
        int unitStart = (int)((long)units * partition / parts);
        int unitEnd = (int)((long)units * (partition + 1) / parts);
        return (Math.Min(unitStart * granularity, count), Math.Min(unitEnd * granularity, count));
    }
}
