// An MSBuild task (compiled by RoslynCodeTaskFactory from Engine.Peers.csproj, not part of the program) that rewrites one
// version requirement of an ELF shared library in place. Why bench/Engine.Peers needs it is in bench/README.md,
// "libtorch": TorchSharp 0.107.0's libLibTorchSharp.so asks for GLIBCXX_3.4.32, which Debian 12's libstdc++ lacks, for
// one symbol that it never calls.
//
// The format (System V ABI, and the LSB's "Symbol Versioning" chapter): the section of type SHT_GNU_verneed (the
// .gnu.version_r section) holds one Elf64_Verneed per needed library,
//     vn_version u16, vn_cnt u16, vn_file u32 (.dynstr offset), vn_aux u32, vn_next u32      (16 bytes)
// each followed (vn_aux, then vna_next, byte offsets) by vn_cnt Elf64_Vernaux entries, one per version it needs,
//     vna_hash u32 (ELF hash of the name), vna_flags u16, vna_other u16 (the version index symbols use), vna_name u32,
//     vna_next u32                                                                             (16 bytes)
// The dynamic loader refuses the library when any vna_name is a version the named library does not define. Rewriting
// an entry's vna_name and vna_hash to a version the library does define (its string already in .dynstr) and keeping
// vna_other keeps every symbol bound to that index (.gnu.version) pointing at a valid entry: the file keeps its size and
// layout. A symbol bound to the index is then looked up under the new version; one that is only referenced (no
// relocation uses it, so the loader never resolves it) costs nothing.
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class RewriteElfVersionNeed : Microsoft.Build.Utilities.Task
{
    private const uint ShtGnuVerneed = 0x6ffffffe;

    /// <summary>The library to patch: the build output's copy, never the NuGet cache's.</summary>
    [Required]
    public string File { get; set; } = "";

    /// <summary>The needed library whose requirement is rewritten, for example libstdc++.so.6.</summary>
    [Required]
    public string Library { get; set; } = "";

    /// <summary>The version it asks for now, for example GLIBCXX_3.4.32.</summary>
    [Required]
    public string From { get; set; } = "";

    /// <summary>The version it will ask for, which must already be a string of .dynstr, for example GLIBCXX_3.4.30.</summary>
    [Required]
    public string To { get; set; } = "";

    public override bool Execute()
    {
        string name = Path.GetFileName(File);
        if (!System.IO.File.Exists(File))
        {
            Log.LogError($"{name}: no such file: {File}");
            return false;
        }
        byte[] elf = System.IO.File.ReadAllBytes(File);
        // ELF64, little-endian (e_ident: magic, EI_CLASS 2, EI_DATA 1): the only kind this is written for.
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F' || elf[4] != 2 || elf[5] != 1)
        {
            Log.LogError($"{name}: not a little-endian ELF64 file.");
            return false;
        }
        long sectionHeaders = (long)U64(elf, 0x28);
        int sectionHeaderSize = U16(elf, 0x3A), sections = U16(elf, 0x3C);
        for (int s = 0; s < sections; s++)
        {
            int header = checked((int)(sectionHeaders + (long)s * sectionHeaderSize));
            if (U32(elf, header + 4) != ShtGnuVerneed)
            {
                continue;
            }
            int verneed = checked((int)U64(elf, header + 24));
            int needed = (int)U32(elf, header + 44);   // sh_info: the number of Verneed entries
            int stringsHeader = checked((int)(sectionHeaders + (long)U32(elf, header + 40) * sectionHeaderSize));   // sh_link: .dynstr
            int strings = checked((int)U64(elf, stringsHeader + 24)), stringsSize = checked((int)U64(elf, stringsHeader + 32));
            return Rewrite(elf, name, verneed, needed, strings, stringsSize);
        }
        Log.LogError($"{name}: no .gnu.version_r (SHT_GNU_verneed) section.");
        return false;
    }

    private bool Rewrite(byte[] elf, string name, int verneed, int needed, int strings, int stringsSize)
    {
        int? target = null, fromEntry = null;
        int entry = verneed;
        for (int n = 0; n < needed; n++)
        {
            bool library = String(elf, strings, U32(elf, entry + 4)) == Library;
            int aux = entry + (int)U32(elf, entry + 8);
            for (int a = 0, count = U16(elf, entry + 2); a < count; a++)
            {
                string version = String(elf, strings, U32(elf, aux + 8));
                if (library && version == To)
                {
                    target ??= (int)U32(elf, aux + 8);
                }
                if (library && version == From)
                {
                    fromEntry = aux;
                }
                aux += (int)U32(elf, aux + 12);
            }
            entry += (int)U32(elf, entry + 12);
        }
        if (fromEntry is null)
        {
            Log.LogMessage(MessageImportance.High, $"{name}: no {Library} requirement of {From}; nothing to change (already patched, or another build of the library).");
            return true;
        }
        // The new name must already be in .dynstr (a Vernaux that needs it, or any NUL-terminated occurrence): the string
        // table cannot grow without moving every section after it.
        target ??= Find(elf, strings, stringsSize, To);
        if (target is null)
        {
            Log.LogError($"{name}: '{To}' is not a string of .dynstr; cannot point the requirement at it without growing the file.");
            return false;
        }
        int at = fromEntry.Value;
        uint oldHash = U32(elf, at), newHash = ElfHash(To);
        uint oldName = U32(elf, at + 8);
        ushort index = U16(elf, at + 6);
        Write32(elf, at, newHash);
        Write32(elf, at + 8, (uint)target.Value);
        // Write a new file and move it over the old name: the old file's bytes (a hard link into a package cache, say)
        // are never written. The copy keeps the original's time stamp (and its size is the same), so an incremental build
        // sees it as up to date and does not copy the unpatched library over it again.
        DateTime written = System.IO.File.GetLastWriteTimeUtc(File);
        string temporary = File + ".patching";
        System.IO.File.WriteAllBytes(temporary, elf);
        System.IO.File.SetLastWriteTimeUtc(temporary, written);
        System.IO.File.Delete(File);
        System.IO.File.Move(temporary, File);
        Log.LogMessage(MessageImportance.High,
            $"{name}: {Library} requirement at file offset 0x{at:x} (version index {index}) rewritten from {From} " +
            $"(hash 0x{oldHash:x8}, .dynstr+0x{oldName:x}) to {To} (hash 0x{newHash:x8}, .dynstr+0x{target.Value:x}).");
        return true;
    }

    // The System V ABI's ELF hash (the one vna_hash holds, also DT_HASH's).
    private static uint ElfHash(string text)
    {
        uint h = 0;
        foreach (byte c in Encoding.ASCII.GetBytes(text))
        {
            h = (h << 4) + c;
            uint g = h & 0xf0000000;
            if (g != 0)
            {
                h ^= g >> 24;
            }
            h &= ~g;
        }
        return h;
    }

    private static int? Find(byte[] elf, int strings, int size, string text)
    {
        byte[] wanted = Encoding.ASCII.GetBytes(text + "\0");
        for (int i = 0; i + wanted.Length <= size; i++)
        {
            int k = 0;
            while (k < wanted.Length && elf[strings + i + k] == wanted[k])
            {
                k++;
            }
            if (k == wanted.Length)
            {
                return i;
            }
        }
        return null;
    }

    private static string String(byte[] elf, int strings, uint offset)
    {
        int start = strings + (int)offset, end = start;
        while (elf[end] != 0)
        {
            end++;
        }
        return Encoding.ASCII.GetString(elf, start, end - start);
    }

    // Little-endian reads and writes spelled out: the task factory compiles against .NET Standard 2.0, which has no
    // BinaryPrimitives, and the file's byte order is not the build machine's business.
    private static ushort U16(byte[] b, int at) => (ushort)(b[at] | b[at + 1] << 8);

    private static uint U32(byte[] b, int at) => (uint)(b[at] | b[at + 1] << 8 | b[at + 2] << 16 | b[at + 3] << 24);

    private static ulong U64(byte[] b, long at) => U32(b, checked((int)at)) | (ulong)U32(b, checked((int)at + 4)) << 32;

    private static void Write32(byte[] b, int at, uint value)
    {
        for (int i = 0; i < 4; i++)
        {
            b[at + i] = (byte)(value >> (8 * i));
        }
    }
}
