using System.Runtime.InteropServices;

namespace Palisade.Bpf;

/// <summary>A member of a BTF struct: name, byte offset, and bitfield size (0 when not a bitfield).</summary>
public sealed record BtfMember(string Name, int BitOffset, int BitfieldSize, int Size)
{
    public int Offset => BitOffset / 8;
}

/// <summary>A struct as the compiler laid it out.</summary>
public sealed record BtfStruct(string Name, int Size, IReadOnlyList<BtfMember> Members);

/// <summary>A global variable in a data section (.rodata, .bss, .data).</summary>
public sealed record BtfVariable(string Name, int Offset, int Size, int TypeId);

/// <summary>Read-only view of BTF type information (of an object or of a file such as /sys/kernel/btf/vmlinux).</summary>
public sealed unsafe class Btf : IDisposable
{
    private const uint KindStruct = 4;
    private const uint KindEnum = 6;
    private const uint KindVar = 14;
    private const uint KindDatasec = 15;

    private nint _btf;
    private readonly bool _owned;
    private readonly object? _owner;

    internal Btf(nint btf, object owner)
    {
        _btf = btf;
        _owner = owner;
    }

    private Btf(nint btf)
    {
        _btf = btf;
        _owned = true;
    }

    /// <summary>Parses BTF from an ELF object or a raw BTF file.</summary>
    public static Btf Load(string path)
    {
        var btf = Interop.Libbpf.BtfParse(path, 0);
        if (btf == 0)
        {
            throw new BpfException("parse BTF", path, BpfException.LastErrno());
        }
        return new Btf(btf);
    }

    public int TypeCount => (int)Interop.Libbpf.BtfTypeCount(Handle);

    /// <summary>True when a type of this name and kind (BTF_KIND_*) exists, e.g. a function (12) named "fd_install".</summary>
    public bool Contains(string name, int kind) => Interop.Libbpf.BtfFindByNameKind(Handle, name, (uint)kind) > 0;

    /// <summary>The struct named <paramref name="name"/>, or null.</summary>
    public BtfStruct? FindStruct(string name)
    {
        var id = Interop.Libbpf.BtfFindByNameKind(Handle, name, KindStruct);
        return id <= 0 ? null : ReadStruct((uint)id);
    }

    /// <summary>The enumerators of enum <paramref name="name"/> (name to value), or null when it is not in the BTF.</summary>
    public IReadOnlyDictionary<string, long>? FindEnum(string name)
    {
        var id = Interop.Libbpf.BtfFindByNameKind(Handle, name, KindEnum);
        if (id <= 0)
        {
            return null;
        }
        var type = Interop.Libbpf.BtfTypeById(Handle, (uint)id);
        var vlen = (int)(type[1] & 0xffff);
        var entry = type + 3; // btf_enum { name_off, val } follows btf_type
        var result = new Dictionary<string, long>(vlen, StringComparer.Ordinal);
        for (var i = 0; i < vlen; i++, entry += 2)
        {
            result[NameAt(entry[0])] = (int)entry[1];
        }
        return result;
    }

    /// <summary>The names of every enum in the BTF (anonymous enums left out).</summary>
    public IReadOnlyList<string> EnumNames()
    {
        var result = new List<string>();
        for (uint id = 1; id < (uint)TypeCount; id++)
        {
            var type = Interop.Libbpf.BtfTypeById(Handle, id);
            if (Kind(type) == KindEnum && NameAt(type[0]) is { Length: > 0 } name)
            {
                result.Add(name);
            }
        }
        return result;
    }

    /// <summary>The variables of data section <paramref name="section"/> (".rodata", ".bss", ...).</summary>
    public IReadOnlyList<BtfVariable> Variables(string section)
    {
        var id = Interop.Libbpf.BtfFindByNameKind(Handle, section, KindDatasec);
        if (id <= 0)
        {
            return [];
        }
        var type = Interop.Libbpf.BtfTypeById(Handle, (uint)id);
        var vlen = (int)(type[1] & 0xffff);
        var secinfo = type + 3; // btf_var_secinfo { type, offset, size } follows btf_type
        var result = new List<BtfVariable>(vlen);
        for (var i = 0; i < vlen; i++)
        {
            var varType = secinfo[i * 3];
            var varBtf = Interop.Libbpf.BtfTypeById(Handle, varType);
            var name = NameAt(varBtf[0]);
            result.Add(new BtfVariable(name, (int)secinfo[i * 3 + 1], (int)secinfo[i * 3 + 2], (int)varBtf[2]));
        }
        return result;
    }

    /// <summary>Variables of every data section, e.g. to find the <c>layout__*</c> globals wherever the compiler put them.</summary>
    public IReadOnlyList<BtfVariable> AllVariables()
    {
        var result = new List<BtfVariable>();
        for (uint id = 1; id < (uint)TypeCount; id++)
        {
            var type = Interop.Libbpf.BtfTypeById(Handle, id);
            if (Kind(type) == KindDatasec)
            {
                result.AddRange(Variables(NameAt(type[0])));
            }
        }
        return result;
    }

    /// <summary>The variable <paramref name="name"/> of data section <paramref name="section"/>, or null.</summary>
    public BtfVariable? FindVariable(string section, string name) =>
        Variables(section).FirstOrDefault(v => v.Name == name);

    /// <summary>The struct a variable's type names (through typedefs and qualifiers), or null when it is not a struct.</summary>
    public BtfStruct? StructOf(BtfVariable variable)
    {
        var id = (uint)variable.TypeId;
        for (var depth = 0; depth < 16; depth++)
        {
            var type = Interop.Libbpf.BtfTypeById(Handle, id);
            if (type == null)
            {
                return null;
            }
            var kind = Kind(type);
            if (kind == KindStruct)
            {
                return ReadStruct(id);
            }
            // typedef (8), volatile (9), const (10), restrict (11), type_tag (18) all point on via type[2].
            if (kind is 8 or 9 or 10 or 11 or 18)
            {
                id = type[2];
                continue;
            }
            return null;
        }
        return null;
    }

    private BtfStruct ReadStruct(uint id)
    {
        var type = Interop.Libbpf.BtfTypeById(Handle, id);
        var info = type[1];
        var vlen = (int)(info & 0xffff);
        var kindFlag = (info >> 31) != 0;
        var members = new List<BtfMember>(vlen);
        var member = type + 3; // btf_member { name_off, type, offset } follows btf_type
        for (var i = 0; i < vlen; i++, member += 3)
        {
            var offset = member[2];
            var bitOffset = kindFlag ? (int)(offset & 0xffffff) : (int)offset;
            var bitfield = kindFlag ? (int)(offset >> 24) : 0;
            var size = (int)Interop.Libbpf.BtfResolveSize(Handle, member[1]);
            members.Add(new BtfMember(NameAt(member[0]), bitOffset, bitfield, size));
        }
        return new BtfStruct(NameAt(type[0]), (int)type[2], members);
    }

    private static uint Kind(uint* type) => (type[1] >> 24) & 0x1f;

    private string NameAt(uint offset) => Marshal.PtrToStringUTF8((nint)Interop.Libbpf.BtfNameByOffset(Handle, offset)) ?? string.Empty;

    private nint Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_btf == 0, this);
            if (_owner is BpfObject o)
            {
                o.ThrowIfDisposed();
            }
            return _btf;
        }
    }

    public void Dispose()
    {
        if (_owned && _btf != 0)
        {
            Interop.Libbpf.BtfFree(_btf);
        }
        _btf = 0;
    }
}
