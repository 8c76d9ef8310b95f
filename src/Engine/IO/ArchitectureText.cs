using System.Globalization;

namespace Engine.IO;

/// <summary>The kinds of layer an architecture string names.</summary>
internal enum ArchitectureKind
{
    Conv2d,
    Linear,
    AvgPool2d,
    Flatten,
    ReLU,
}

/// <summary>
/// One entry of an architecture string: <c>name=kind</c> or <c>name=kind(arguments)</c>, with its integer arguments
/// (kernel, stride, padding for conv2d; kernel, stride for avgpool2d) and whether a fused ReLU is marked.
/// </summary>
/// <param name="Name">The layer name (prefix of its tensors).</param>
/// <param name="Kind">The layer kind.</param>
/// <param name="Numbers">The integer arguments, in order.</param>
/// <param name="FusedRelu">Whether the entry ends its arguments with <c>relu</c> (int8 files only).</param>
/// <param name="Text">The entry as written, for messages.</param>
internal sealed record ArchitectureEntry(string Name, ArchitectureKind Kind, int[] Numbers, bool FusedRelu, string Text)
{
    /// <summary>Kernel size of a conv2d or avgpool2d entry.</summary>
    public int Kernel => Numbers[0];

    /// <summary>Stride of a conv2d or avgpool2d entry.</summary>
    public int Stride => Numbers[1];

    /// <summary>Padding of a conv2d entry.</summary>
    public int Padding => Numbers[2];
}

/// <summary>
/// The one grammar and parser of the <c>architecture</c> metadata of float, int8 and gradient-statistics files
/// (docs/file-formats.md, "The architecture string"):
/// <code>
/// architecture := entry (";" entry)*        empty entries are skipped
/// entry        := name "=" kind
/// name         := one or more of A-Z a-z 0-9 _ -   (unique)
/// kind         := "conv2d(" int "," int "," int [",relu"] ")" | "linear" | "linear(relu)"
///               | "avgpool2d(" int "," int ")" | "flatten" | "relu"
/// int          := optional spaces, decimal digits, optional spaces
/// </code>
/// The fused <c>relu</c> markers belong to int8 files only. Kernel and stride must be positive, padding non-negative.
/// Every violation is an <see cref="InvalidDataException"/> naming the file and the entry.
/// </summary>
internal static class ArchitectureText
{
    /// <summary>Largest kernel, stride or padding accepted: far beyond any real network, small enough that sums stay in range.</summary>
    public const int MaxArgument = 1 << 16;

    /// <summary>
    /// The entries of <paramref name="text"/>; <paramref name="source"/> names the file in errors, and
    /// <paramref name="allowFusedRelu"/> admits the int8 markers <c>conv2d(k,s,p,relu)</c> and <c>linear(relu)</c>.
    /// </summary>
    public static List<ArchitectureEntry> Parse(string text, string source, bool allowFusedRelu)
    {
        var entries = new List<ArchitectureEntry>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (string entry in text.Split(';'))
        {
            if (entry.Length == 0)
            {
                continue;
            }
            ArchitectureEntry parsed = ParseEntry(entry, source, allowFusedRelu);
            if (!names.Add(parsed.Name))
            {
                throw Fail(source, entry, $"reuses the layer name '{parsed.Name}'");
            }
            entries.Add(parsed);
        }
        if (entries.Count == 0)
        {
            throw new InvalidDataException($"{source}: metadata 'architecture' names no layer.");
        }
        return entries;
    }

    /// <summary>Whether <paramref name="name"/> is a layer name the grammar admits: non-empty, only A-Z a-z 0-9 _ -.</summary>
    public static bool IsValidName(string name) => name.Length > 0 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-');

    /// <summary>
    /// Orders layer names as a person numbers them: by the text before a trailing number, then by that number's value
    /// (conv2 before conv10), then ordinally.
    /// </summary>
    public static int CompareNames(string a, string b)
    {
        (string prefixA, string digitsA) = Split(a);
        (string prefixB, string digitsB) = Split(b);
        int c = string.CompareOrdinal(prefixA, prefixB);
        if (c != 0)
        {
            return c;
        }
        c = digitsA.Length.CompareTo(digitsB.Length);
        if (c != 0)
        {
            return c;
        }
        c = string.CompareOrdinal(digitsA, digitsB);
        return c != 0 ? c : string.CompareOrdinal(a, b);
    }

    // The non-digit prefix and the trailing digits without leading zeros.
    private static (string Prefix, string Digits) Split(string name)
    {
        int end = name.Length;
        while (end > 0 && char.IsAsciiDigit(name[end - 1]))
        {
            end--;
        }
        return (name[..end], name[end..].TrimStart('0'));
    }

    private static ArchitectureEntry ParseEntry(string entry, string source, bool allowFusedRelu)
    {
        int eq = entry.IndexOf('=');
        if (eq < 0)
        {
            throw Fail(source, entry, "is not 'name=kind' or 'name=kind(arguments)'");
        }
        string name = entry[..eq];
        if (!IsValidName(name))
        {
            throw Fail(source, entry, $"has layer name '{name}'; a name is one or more of A-Z, a-z, 0-9, '_' and '-'");
        }
        string kindText = entry[(eq + 1)..];
        string kindName = kindText;
        string[]? args = null;
        int open = kindText.IndexOf('(');
        if (open >= 0)
        {
            int close = kindText.IndexOf(')');
            if (close != kindText.Length - 1 || kindText.IndexOf('(', open + 1) >= 0)
            {
                throw Fail(source, entry, "needs its arguments in one pair of parentheses that ends the entry");
            }
            kindName = kindText[..open];
            if (close == open + 1)
            {
                throw Fail(source, entry, "has empty parentheses");
            }
            args = kindText[(open + 1)..close].Split(',');
        }
        else if (kindText.Contains(')'))
        {
            throw Fail(source, entry, "has ')' without '('");
        }
        ArchitectureKind kind = kindName switch
        {
            "conv2d" => ArchitectureKind.Conv2d,
            "linear" => ArchitectureKind.Linear,
            "avgpool2d" => ArchitectureKind.AvgPool2d,
            "flatten" => ArchitectureKind.Flatten,
            "relu" => ArchitectureKind.ReLU,
            _ => throw Fail(source, entry, $"has unknown layer kind '{kindName}' (conv2d, linear, avgpool2d, flatten or relu)"),
        };
        bool relu = false;
        if (args is not null && args.Length > 0 && args[^1] == "relu")
        {
            relu = true;
            args = args[..^1];
        }
        if (relu && !allowFusedRelu)
        {
            throw Fail(source, entry, "marks a fused relu, which only int8 files have");
        }
        int expected = kind switch
        {
            ArchitectureKind.Conv2d => 3,
            ArchitectureKind.AvgPool2d => 2,
            _ => 0,
        };
        if (relu && kind is not (ArchitectureKind.Conv2d or ArchitectureKind.Linear))
        {
            throw Fail(source, entry, $"marks a fused relu on {kindName}, which takes none");
        }
        int given = args?.Length ?? 0;
        if (given != expected)
        {
            throw Fail(source, entry, expected == 0
                ? $"gives {kindName} {given} argument{(given == 1 ? "" : "s")}; it takes none"
                : $"gives {kindName} {given} argument{(given == 1 ? "" : "s")}; it takes {expected} ({(expected == 3 ? "kernel, stride, padding" : "kernel, stride")})");
        }
        int[] numbers = new int[given];
        for (int i = 0; i < given; i++)
        {
            numbers[i] = ParseInteger(args![i], source, entry);
        }
        if (expected > 0)
        {
            if (numbers[0] <= 0 || numbers[1] <= 0)
            {
                throw Fail(source, entry, $"has kernel {numbers[0]} and stride {numbers[1]}; both must be positive");
            }
            if (expected == 3 && numbers[2] < 0)
            {
                throw Fail(source, entry, $"has padding {numbers[2]}; it must be zero or positive");
            }
            if (numbers.Any(n => n > MaxArgument))
            {
                throw Fail(source, entry, $"has an argument above {MaxArgument}");
            }
        }
        return new ArchitectureEntry(name, kind, numbers, relu, entry);
    }

    private static int ParseInteger(string text, string source, string entry)
    {
        string trimmed = text.Trim(' ');
        ReadOnlySpan<char> digits = trimmed.StartsWith('-') ? trimmed.AsSpan(1) : trimmed;
        if (digits.Length == 0 || digits.Length > 10 || digits.ContainsAnyExcept("0123456789")
            || !int.TryParse(trimmed, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value))
        {
            throw Fail(source, entry, $"has argument '{text}', which is not a decimal integer");
        }
        return value;
    }

    private static InvalidDataException Fail(string source, string entry, string problem) =>
        new($"{source}: architecture entry '{entry}' {problem}.");
}
