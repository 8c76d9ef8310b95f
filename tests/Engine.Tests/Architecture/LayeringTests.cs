using System.Reflection;
using System.Text.RegularExpressions;

namespace Engine.Tests.Architecture;

/// <summary>
/// The core library's folders form floors, each using only the floors below it (docs/architecture.md): general types
/// live low enough that nothing reaches upwards, and there are no cycles. A folder is a namespace (Engine.Kernels lives
/// in src/Engine/Kernels). Checked twice: in the compiled assembly (base types, fields, signatures), and in the sources
/// (using directives and qualified names, which also catch references inside method bodies).
/// </summary>
public partial class LayeringTests
{
    /// <summary>What each floor may use, besides itself, the root namespace and Engine.Tensors.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Allowed = new Dictionary<string, string[]>
    {
        ["Tensors"] = [],
        ["Kernels"] = [],
        ["Data"] = ["Kernels"],
        ["Layers"] = ["Kernels"],
        ["Training"] = ["Kernels", "Data", "Layers"],
        ["Quantization"] = ["Kernels", "Data", "Layers", "Training"],
        ["Statistics"] = ["Kernels", "Data", "Layers", "Training"],
        ["Pruning"] = ["Kernels", "Data", "Layers", "Training", "Statistics"],
        ["IO"] = ["Kernels", "Data", "Layers", "Quantization", "Statistics"],
        ["Inference"] = ["Kernels", "Data", "Layers", "Quantization", "IO"],
        ["Compression"] = ["Kernels", "Data", "Layers", "Training", "Quantization", "Statistics", "Pruning", "IO", "Inference"],
    };

    [Fact]
    public void The_allowed_uses_have_no_cycle()
    {
        var order = new List<string>();
        var visiting = new HashSet<string>();
        void Visit(string floor)
        {
            Assert.True(visiting.Add(floor), $"the floors form a cycle through {floor}");
            foreach (string below in Allowed[floor])
            {
                if (!order.Contains(below))
                {
                    Visit(below);
                }
            }
            visiting.Remove(floor);
            order.Add(floor);
        }
        foreach (string floor in Allowed.Keys.Where(f => !order.Contains(f)))
        {
            Visit(floor);
        }
        Assert.Equal(Allowed.Count, order.Count);
    }

    [Fact]
    public void Compiled_types_reference_only_the_floors_below_them()
    {
        var violations = new List<string>();
        foreach (Type type in typeof(Engine.Layers.Layer).Assembly.GetTypes())
        {
            string? floor = Floor(type.Namespace);
            if (floor is null)
            {
                continue;
            }
            foreach (Type used in Referenced(type))
            {
                string? target = Floor(used.Namespace);
                if (target is not null && target != floor && target != "Tensors" && !Allowed[floor].Contains(target))
                {
                    violations.Add($"{type.FullName} ({floor}) uses {used.FullName} ({target})");
                }
            }
        }
        Assert.True(violations.Count == 0, string.Join("\n", violations.Distinct()));
    }

    [Fact]
    public void Sources_reference_only_the_floors_below_them()
    {
        string library = Path.Combine(RepositoryPaths.Root, "src", "Engine");
        var violations = new List<string>();
        foreach (string file in Directory.EnumerateFiles(library, "*.cs", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(library, file);
            if (relative.StartsWith("obj", StringComparison.Ordinal) || relative.StartsWith("bin", StringComparison.Ordinal))
            {
                continue;
            }
            string text = File.ReadAllText(file);
            string? folder = relative.Contains(Path.DirectorySeparatorChar) ? relative[..relative.IndexOf(Path.DirectorySeparatorChar)] : null;
            if (folder is null)
            {
                Assert.DoesNotMatch(UsingEngine(), text);   // root files (GlobalUsings, SeededRandom) stand on the ground floor
                continue;
            }
            Assert.True(Allowed.ContainsKey(folder), $"{relative}: folder '{folder}' is not in the layering table");
            Assert.Contains($"namespace Engine.{folder};", text);
            foreach (Match m in Reference().Matches(text))
            {
                string target = m.Groups["floor"].Value;
                if (target != folder && target != "Tensors" && !Allowed[folder].Contains(target))
                {
                    violations.Add($"{relative}: '{m.Value.Trim()}' reaches {target} from {folder}");
                }
            }
        }
        Assert.True(violations.Count == 0, string.Join("\n", violations));
    }

    [Fact]
    public void The_checks_see_a_reference_that_breaks_the_rule()
    {
        // The source scan must notice both spellings of an upward reference.
        Assert.Matches(Reference(), "using Engine.Quantization;");
        Assert.Matches(Reference(), "var q = new Engine.IO.ModelFile();");
        Assert.Matches(Reference(), "/// <see cref=\"Quantization.QuantizedNetwork\"/>");
        Assert.DoesNotMatch(Reference(), "using System.Numerics.Tensors;");
    }

    private static string? Floor(string? ns)
    {
        if (ns is null || !ns.StartsWith("Engine.", StringComparison.Ordinal))
        {
            return null;
        }
        string first = ns["Engine.".Length..].Split('.')[0];
        return Allowed.ContainsKey(first) ? first : null;
    }

    private static IEnumerable<Type> Referenced(Type type)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var seen = new List<Type>();
        void Add(Type? t)
        {
            if (t is null)
            {
                return;
            }
            if (t.HasElementType)
            {
                Add(t.GetElementType());
                return;
            }
            if (t.IsGenericType)
            {
                foreach (Type argument in t.GetGenericArguments())
                {
                    Add(argument);
                }
                if (!t.IsGenericTypeDefinition)
                {
                    Add(t.GetGenericTypeDefinition());
                    return;
                }
            }
            if (!t.IsGenericParameter)
            {
                seen.Add(t);
            }
        }
        Add(type.BaseType);
        foreach (Type i in type.GetInterfaces())
        {
            Add(i);
        }
        foreach (FieldInfo f in type.GetFields(all))
        {
            Add(f.FieldType);
        }
        foreach (MethodBase m in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all)))
        {
            foreach (ParameterInfo p in m.GetParameters())
            {
                Add(p.ParameterType);
            }
            if (m is MethodInfo method)
            {
                Add(method.ReturnType);
            }
        }
        return seen;
    }


    [GeneratedRegex(@"using\s+Engine\.(?!Tensors;)")]
    private static partial Regex UsingEngine();

    // "using Engine.X;", "Engine.X.Type", or a relative "X.Type" in a cref attribute (inside namespace Engine.Y).
    [GeneratedRegex(@"(?:using\s+Engine\.|\bEngine\.|cref=""(?:Engine\.)?)(?<floor>Tensors|Kernels|Data|Layers|Training|Quantization|Statistics|Pruning|IO|Inference)(?:;|\.[A-Z])")]
    private static partial Regex Reference();
}
