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
/// Splits a range of items into at most <c>threads</c> contiguous partitions and runs them on the caller's thread and
/// persistent worker threads (<see cref="WorkerPool"/>: struct work, nothing allocated per run); one partition runs
/// inline. The thread count is an argument, never a process-wide setting: whoever sizes per-partition buffers passes the
/// same number it sized them for, so the split cannot change between the two. The split depends only on the item count
/// and thread count, so results are reproducible run after run.
/// </summary>
public static class WorkPartition
{
    /// <summary>The thread count used where the caller names none: the processor count.</summary>
    public static int DefaultThreads => Environment.ProcessorCount;

    /// <summary>Throws unless <paramref name="threads"/> is a usable thread count (1 or more).</summary>
    public static int CheckThreads(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1, nameof(threads));
        return threads;
    }

    /// <summary>
    /// How many partitions <see cref="Run{TWork}"/> makes of <paramref name="count"/> items in steps of
    /// <paramref name="granularity"/> on <paramref name="threads"/> threads: min(ceil(count / granularity), threads), at least 1.
    /// </summary>
    public static int PartitionCount(int threads, int count, int granularity = 1)
    {
        int units = (int)(((long)count + granularity - 1) / Math.Max(granularity, 1));
        return Math.Max(1, Math.Min(units, threads));
    }

    /// <summary>
    /// Runs <paramref name="work"/> over items [0, <paramref name="count"/>) in <see cref="PartitionCount"/> partitions whose
    /// boundaries are multiples of <paramref name="granularity"/> (so a GEMM split lands on micro-tile edges).
    /// </summary>
    public static void Run<TWork>(int threads, int count, int granularity, in TWork work)
        where TWork : struct, IPartitionedWork
    {
        if (count <= 0)
        {
            return;
        }
        int parts = PartitionCount(CheckThreads(threads), count, granularity);
        if (parts == 1)
        {
            work.Invoke(0, 0, count);
            return;
        }
        if (!WorkerPool.TryRun(work, count, granularity, parts))
        {
            // Every worker team is busy (more concurrent callers than cores), or this run is nested inside a partition:
            // do the same partitions here, one after another. Same partitions, so the same results.
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
        int units = (int)(((long)count + granularity - 1) / granularity);
        int unitStart = (int)((long)units * partition / parts);
        int unitEnd = (int)((long)units * (partition + 1) / parts);
        return ((int)Math.Min((long)unitStart * granularity, count), (int)Math.Min((long)unitEnd * granularity, count));
    }
}
