namespace Engine.Kernels;

/// <summary>
/// Sets of per-partition scratch objects for a network that many threads call at once: a call rents a set of exactly
/// as many workspaces as it has partitions, so no two threads ever share one, and returns it afterwards. Workspaces only
/// grow, so once every (partition count, batch size) seen has been served, renting allocates nothing.
/// </summary>
internal sealed class WorkspacePool<TWorkspace>
    where TWorkspace : class, new()
{
    private readonly Dictionary<int, Stack<TWorkspace[]>> _sets = [];   // by partition count

    /// <summary>A set of <paramref name="parts"/> workspaces that no other caller holds.</summary>
    public TWorkspace[] Rent(int parts)
    {
        lock (_sets)
        {
            if (_sets.TryGetValue(parts, out Stack<TWorkspace[]>? stack) && stack.TryPop(out TWorkspace[]? set))
            {
                return set;
            }
        }
        var fresh = new TWorkspace[parts];
        for (int i = 0; i < fresh.Length; i++)
        {
            fresh[i] = new TWorkspace();
        }
        return fresh;
    }

    /// <summary>Gives back a set from <see cref="Rent"/>.</summary>
    public void Return(TWorkspace[] set)
    {
        lock (_sets)
        {
            if (!_sets.TryGetValue(set.Length, out Stack<TWorkspace[]>? stack))
            {
                stack = new Stack<TWorkspace[]>();
                _sets.Add(set.Length, stack);
            }
            stack.Push(set);
        }
    }
}
