namespace Engine.IO;

/// <summary>Whole-file writes that never leave a half-written target (docs/file-formats.md, "Atomic writes").</summary>
public static class AtomicFile
{
    /// <summary>
    /// Writes <paramref name="path"/> atomically: <paramref name="write"/> fills a temporary file in the same directory,
    /// which is flushed to disk, then renamed over <paramref name="path"/>. If anything fails, the temporary file is
    /// removed and a previous file at <paramref name="path"/> is left as it was. Temporaries of this exact pattern
    /// (<c>.NAME.GUID.tmp</c>) for the same target that a killed write left behind (untouched for five minutes and held
    /// open by no one) are removed first, so interrupted writes leave no debris.
    /// </summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full) ?? ".";
        RemoveStaleTemporaries(directory, Path.GetFileName(full), DateTime.UtcNow - StaleTemporaryAge);
        string temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, full, overwrite: true);
        }
        catch
        {
            try
            {
                File.Delete(temporary);
            }
            catch (IOException)
            {
                // The original error matters more than a leftover temporary file.
            }
            throw;
        }
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/> atomically, as <see cref="Write(string, Action{Stream})"/>.</summary>
    public static void Write(string path, ReadOnlyMemory<byte> bytes) => Write(path, stream => stream.Write(bytes.Span));

    // How long a temporary file of an earlier write must have been untouched before a later write removes it.
    internal static readonly TimeSpan StaleTemporaryAge = TimeSpan.FromMinutes(5);

    // Removes ".{target}.{32 hex digits}.tmp" files last written before `olderThan` that no process holds open (a
    // write in progress keeps its temporary open with FileShare.None, so opening it for deletion fails and it is kept).
    internal static void RemoveStaleTemporaries(string directory, string target, DateTime olderThan)
    {
        string prefix = "." + target + ".";
        IEnumerable<string> candidates;
        try
        {
            candidates = Directory.EnumerateFiles(directory, "*.tmp");
        }
        catch (IOException)
        {
            return;
        }
        catch (UnauthorizedAccessException)
        {
            return;
        }
        foreach (string candidate in candidates)
        {
            string file = Path.GetFileName(candidate);
            if (!file.StartsWith(prefix, StringComparison.Ordinal) || !file.EndsWith(".tmp", StringComparison.Ordinal))
            {
                continue;
            }
            string guid = file[prefix.Length..^4];
            if (guid.Length != 32 || guid.AsSpan().ContainsAnyExcept("0123456789abcdef"))
            {
                continue;
            }
            try
            {
                if (File.GetLastWriteTimeUtc(candidate) > olderThan)
                {
                    continue;
                }
                using (new FileStream(candidate, FileMode.Open, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose))
                {
                }
            }
            catch (IOException)
            {
                // Held by a live write, or gone already: not ours to remove.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }
}
