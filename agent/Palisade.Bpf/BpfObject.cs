using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Palisade.Bpf;

/// <summary>
/// A BPF ELF object in the phases of libbpf: open, then set constants and map sizes, then
/// <see cref="Load"/>, then attach programs. Disposing it detaches every attachment made
/// through its programs and unloads its programs and maps.
/// </summary>
public sealed unsafe partial class BpfObject : IDisposable
{
    // The verifier log of a large program at log level 1 runs to a few MiB; the kernel keeps
    // the tail (where the reason is) when it does not fit. Allocated only between open and load.
    private const int VerifierLogSize = 4 * 1024 * 1024;

    private readonly SafeBpfObjectHandle _handle;
    private readonly List<BpfProgram> _programs = [];
    private readonly List<BpfMap> _maps = [];
    private readonly HashSet<BpfAttachment> _attachments = [];
    private readonly Lock _gate = new();
    private void* _elfCopy;
    private byte* _logBuffer;
    private bool _disposed;

    private BpfObject(string name, SafeBpfObjectHandle handle, void* elfCopy, byte* logBuffer)
    {
        Name = name;
        _handle = handle;
        _elfCopy = elfCopy;
        _logBuffer = logBuffer;
        for (var p = Interop.Libbpf.ObjectNextProgram(handle, 0); p != 0; p = Interop.Libbpf.ObjectNextProgram(handle, p))
        {
            _programs.Add(new BpfProgram(this, p));
        }
        for (var m = Interop.Libbpf.ObjectNextMap(handle, 0); m != 0; m = Interop.Libbpf.ObjectNextMap(handle, m))
        {
            _maps.Add(new BpfMap(this, m));
        }
    }

    /// <summary>The object's name (used in errors and in the kernel's program info).</summary>
    public string Name { get; }

    /// <summary>True once <see cref="Load"/> succeeded.</summary>
    public bool IsLoaded { get; private set; }

    public IReadOnlyList<BpfProgram> Programs => _programs;

    public IReadOnlyList<BpfMap> Maps => _maps;

    /// <summary>Entries and capacity of each map whose entries come and go (for the map fill metrics).</summary>
    public IReadOnlyList<(string Map, int Entries, int Capacity)> MapUsage() =>
        [.. _maps.Where(m => m.Fd >= 0 && m.HasVariableEntries).Select(m => (m.Name, m.CountEntries(), m.MaxEntries))];

    /// <summary>Opens an object from ELF bytes. Nothing reaches the kernel until <see cref="Load"/>.</summary>
    public static BpfObject Open(ReadOnlySpan<byte> elf, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        LibbpfLog.EnsureInstalled();
        // libbpf may keep pointers into the buffer until the object is closed, so it gets a native copy.
        var copy = NativeMemory.Alloc((nuint)elf.Length);
        elf.CopyTo(new Span<byte>(copy, elf.Length));
        var log = (byte*)NativeMemory.AllocZeroed(VerifierLogSize);
        var nameBytes = Marshal.StringToCoTaskMemUTF8(name);
        try
        {
            var opts = new Interop.Libbpf.BpfObjectOpenOpts
            {
                Sz = (nuint)sizeof(Interop.Libbpf.BpfObjectOpenOpts),
                ObjectName = (byte*)nameBytes,
                KernelLogBuf = log,
                KernelLogSize = VerifierLogSize,
                KernelLogLevel = 0, // libbpf asks for the log only when a load fails
            };
            using var capture = LibbpfLog.Capture();
            var handle = Interop.Libbpf.ObjectOpenMem(copy, (nuint)elf.Length, &opts);
            if (handle.IsInvalid)
            {
                var errno = BpfException.LastErrno();
                handle.Dispose();
                throw new BpfException("open", $"object {name}", errno, capture.Text.Trim());
            }
            return new BpfObject(name, handle, copy, log);
        }
        catch
        {
            NativeMemory.Free(copy);
            NativeMemory.Free(log);
            throw;
        }
        finally
        {
            Marshal.FreeCoTaskMem(nameBytes);
        }
    }

    /// <summary>Opens an object embedded by bpf/Bpf.targets (resource <c>bpf/NAME</c>, e.g. "probe.bpf.o").</summary>
    public static BpfObject OpenEmbedded(Assembly assembly, string objectFile)
    {
        var bytes = ReadEmbedded(assembly, objectFile);
        return Open(bytes, Path.GetFileNameWithoutExtension(Path.GetFileNameWithoutExtension(objectFile)));
    }

    /// <summary>Reads the bytes of an embedded BPF object.</summary>
    public static byte[] ReadEmbedded(Assembly assembly, string objectFile)
    {
        using var stream = assembly.GetManifestResourceStream("bpf/" + objectFile)
            ?? throw new FileNotFoundException(
                $"BPF object '{objectFile}' is not embedded in {assembly.GetName().Name}. " +
                "Fix: list its source as <BpfSource> in the project and rebuild.", objectFile);
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>The program named <paramref name="name"/> (the C function name).</summary>
    public BpfProgram Program(string name) =>
        _programs.Find(p => p.Name == name)
        ?? throw new KeyNotFoundException($"Object {Name} has no program '{name}'. It has: {string.Join(", ", _programs.Select(p => p.Name))}.");

    /// <summary>The map named <paramref name="name"/>.</summary>
    public BpfMap Map(string name) =>
        _maps.Find(m => m.Name == name)
        ?? throw new KeyNotFoundException($"Object {Name} has no map '{name}'. It has: {string.Join(", ", _maps.Select(m => m.Name))}.");

    /// <summary>The BTF of this object (types, data sections); valid while the object is.</summary>
    public Btf Btf
    {
        get
        {
            ThrowIfDisposed();
            var btf = Interop.Libbpf.ObjectBtf(_handle);
            return btf == 0 ? throw new InvalidOperationException($"Object {Name} has no BTF; compile it with -g.") : new Btf(btf, owner: this);
        }
    }

    /// <summary>
    /// Sets a <c>const volatile</c> global before load; the verifier then sees it as a constant
    /// and prunes dead branches.
    /// </summary>
    public void SetConstant<T>(string name, T value) where T : unmanaged
    {
        ThrowIfDisposed();
        if (IsLoaded)
        {
            throw new InvalidOperationException($"Constant '{name}' of object {Name} must be set before Load().");
        }
        var variable = Btf.FindVariable(".rodata", name)
            ?? throw new KeyNotFoundException($"Object {Name} has no 'const volatile' global named '{name}'.");
        if (variable.Size != sizeof(T))
        {
            throw new ArgumentException($"Constant '{name}' of object {Name} is {variable.Size} bytes; a {typeof(T).Name} is {sizeof(T)}.", nameof(value));
        }
        var rodata = _maps.Find(m => m.Name.EndsWith(".rodata", StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"Object {Name} has no .rodata map.");
        nuint size;
        var data = (byte*)Interop.Libbpf.MapInitialValue(rodata.Pointer, &size);
        if (data == null || (nuint)(variable.Offset + variable.Size) > size)
        {
            throw new InvalidOperationException($"The .rodata of object {Name} cannot hold '{name}' at offset {variable.Offset}.");
        }
        *(T*)(data + variable.Offset) = value;
    }

    /// <summary>
    /// Creates the maps and loads every program whose autoload is on. On failure the
    /// exception names the program and carries errno and the verifier log.
    /// </summary>
    public void Load()
    {
        ThrowIfDisposed();
        if (IsLoaded)
        {
            throw new InvalidOperationException($"Object {Name} is already loaded.");
        }
        using var capture = LibbpfLog.Capture();
        var rc = Interop.Libbpf.ObjectLoad(_handle);
        try
        {
            if (rc != 0)
            {
                var libbpfText = capture.Text;
                var program = FailedProgram().Match(libbpfText) is { Success: true } m ? m.Groups[1].Value : null;
                var verifierLog = Marshal.PtrToStringUTF8((nint)_logBuffer) ?? string.Empty;
                throw new BpfLoadException(Name, program, Math.Abs(rc), verifierLog, libbpfText);
            }
            IsLoaded = true;
        }
        finally
        {
            NativeMemory.Free(_logBuffer);
            _logBuffer = null;
        }
    }

    /// <summary>
    /// Takes over the link pinned at <paramref name="path"/> (left by an earlier run): it stays
    /// attached with the program it has, and is tracked like an attachment of this object, so
    /// disposing the object closes it (a link that is still pinned stays attached after that).
    /// </summary>
    public BpfLink AdoptPinnedLink(string path, string description)
    {
        ThrowIfDisposed();
        using var capture = LibbpfLog.Capture();
        var handle = Interop.Libbpf.LinkOpen(path);
        if (handle.IsInvalid)
        {
            var errno = BpfException.LastErrno();
            handle.Dispose();
            throw new BpfException("open pinned link", path, errno, capture.Text.Trim());
        }
        return Track(new BpfLink(this, handle, $"{description} (adopted from {path})"));
    }

    /// <summary>
    /// Pins every map of the object that is not a section map (.rodata, .bss, ...) and not
    /// skipped by <paramref name="skip"/> under <paramref name="directory"/>/NAME on load,
    /// reusing a compatible map already pinned there. Call before <see cref="Load"/>.
    /// </summary>
    public void PinMapsUnder(string directory, Func<BpfMap, bool>? skip = null)
    {
        ThrowIfDisposed();
        foreach (var map in _maps.Where(m => !m.Name.Contains('.', StringComparison.Ordinal) && skip?.Invoke(m) != true))
        {
            map.SetPinPath(Path.Combine(directory, map.Name));
        }
    }

    internal SafeBpfObjectHandle Handle => _handle;

    internal T Track<T>(T attachment) where T : BpfAttachment
    {
        lock (_gate)
        {
            ThrowIfDisposed();
            _attachments.Add(attachment);
        }
        return attachment;
    }

    internal void Untrack(BpfAttachment attachment)
    {
        lock (_gate)
        {
            _attachments.Remove(attachment);
        }
    }

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    public void Dispose()
    {
        BpfAttachment[] attachments;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            attachments = [.. _attachments];
            _attachments.Clear();
        }
        // Detach before unloading, in reverse order of attachment creation is not needed:
        // every link holds its own reference to its program.
        foreach (var attachment in attachments)
        {
            attachment.Dispose();
        }
        _handle.Dispose();
        if (_elfCopy != null)
        {
            NativeMemory.Free(_elfCopy);
            _elfCopy = null;
        }
        if (_logBuffer != null)
        {
            NativeMemory.Free(_logBuffer);
            _logBuffer = null;
        }
    }

    [GeneratedRegex(@"prog '([^']+)': (?:BPF program load failed|failed to load)")]
    private static partial Regex FailedProgram();
}
