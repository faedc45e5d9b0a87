// Command esgzpeer is the "live Go peer" used by pystargz's interop tests and
// benchmarks. It drives the Go reference package
// github.com/containerd/stargz-snapshotter/estargz (v0.12 as packaged by
// Debian) so that blobs written by pystargz can be checked by Go, and blobs
// written by Go can be compared with pystargz's output.
//
// Every sub-command prints one JSON document on stdout (except "cat", which
// prints raw file content). Errors go to stderr and the exit code is 1.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/containerd/stargz-snapshotter/estargz"
	"github.com/containerd/stargz-snapshotter/estargz/zstdchunked"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/tar/asm"
	"github.com/vbatts/tar-split/tar/storage"
)

const usage = `usage:
  esgzpeer build IN OUT [--chunk-size N] [--level L] [--prioritized a,b,c] [--allow-missing] [--procs N] [--zstdchunked]
  esgzpeer append IN OUT [--chunk-size N] [--level L] [--lossless] [--zstdchunked]
  esgzpeer unpack BLOB OUT
  esgzpeer tarsplit TAR OUT
  esgzpeer verify BLOB [--toc-digest D]
  esgzpeer files BLOB
  esgzpeer cat BLOB NAME
  esgzpeer bench BLOB --what open|readall|readsome [--names-file F] [--repeat N] [--chunk-reads]
`

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("missing command\n" + usage))
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "build":
		err = cmdBuild(args)
	case "append":
		err = cmdAppend(args)
	case "unpack":
		err = cmdUnpack(args)
	case "tarsplit":
		err = cmdTarSplit(args)
	case "verify":
		err = cmdVerify(args)
	case "files":
		err = cmdFiles(args)
	case "cat":
		err = cmdCat(args)
	case "bench":
		err = cmdBench(args)
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
		return
	default:
		err = fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
	if err != nil {
		fail(fmt.Errorf("%s: %w", cmd, err))
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "esgzpeer %v\n", err)
	os.Exit(1)
}

// parseArgs parses flags that may appear before, between or after the
// positional arguments (the standard flag package stops at the first
// positional one) and checks the number of positional arguments. Everything
// after "--" is positional, so names starting with "-" can be passed.
func parseArgs(fs *flag.FlagSet, args []string, npos int) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) != npos {
		return nil, fmt.Errorf("want %d positional arguments, got %d (%q)", npos, len(pos), pos)
	}
	return pos, nil
}

func printJSON(v interface{}) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	return enc.Encode(v)
}

// openBlob opens an eStargz / stargz / zstd:chunked blob from a file. The
// returned close function closes the file.
func openBlob(path string) (*estargz.Reader, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	// Gzip (eStargz and legacy stargz footers) is always tried by Open;
	// zstd:chunked is added so that such blobs can be read too.
	r, err := estargz.Open(io.NewSectionReader(f, 0, st.Size()),
		estargz.WithDecompressors(new(zstdchunked.Decompressor)))
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("estargz.Open: %w", err)
	}
	return r, f.Close, nil
}

// regularFiles returns every regular file the Reader exposes, keyed by the
// Reader's normalized name. It walks the directory tree from the root, which
// is the only public way to enumerate entries. A hardlink shows up as its
// target entry (Go resolves it), so keying by entry name reports the target
// once and the hardlink name not at all.
func regularFiles(r *estargz.Reader) (map[string]*estargz.TOCEntry, error) {
	out := make(map[string]*estargz.TOCEntry)
	root, ok := r.Lookup("")
	if !ok {
		// A TOC without entries (the Writer on an empty tar writes
		// "entries": null) has no root directory: nothing to list.
		return out, nil
	}
	seenDirs := map[*estargz.TOCEntry]bool{}
	var walk func(dir *estargz.TOCEntry)
	walk = func(dir *estargz.TOCEntry) {
		// Guard against cycles (e.g. a hardlink to a directory).
		if seenDirs[dir] {
			return
		}
		seenDirs[dir] = true
		dir.ForeachChild(func(_ string, ent *estargz.TOCEntry) bool {
			switch ent.Type {
			case "dir":
				walk(ent)
			case "reg":
				out[ent.Name] = ent
			}
			return true
		})
	}
	walk(root)
	return out, nil
}

func sortedNames(m map[string]*estargz.TOCEntry) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// chunksOf lists the reg/chunk entries of a regular file in file order, using
// ChunkEntryForOffset because the Reader keeps its chunk table private.
func chunksOf(r *estargz.Reader, ent *estargz.TOCEntry) ([]*estargz.TOCEntry, error) {
	var chunks []*estargz.TOCEntry
	for off := int64(0); off < ent.Size; {
		ce, ok := r.ChunkEntryForOffset(ent.Name, off)
		if !ok {
			return nil, fmt.Errorf("%s: no chunk at offset %d", ent.Name, off)
		}
		if ce.ChunkOffset != off || ce.ChunkSize <= 0 {
			return nil, fmt.Errorf("%s: chunk for offset %d has chunkOffset %d chunkSize %d",
				ent.Name, off, ce.ChunkOffset, ce.ChunkSize)
		}
		chunks = append(chunks, ce)
		off += ce.ChunkSize
	}
	return chunks, nil
}

// readChunks reads a file through its OpenFile SectionReader with one ReadAt
// per chunk and calls fn with each chunk's data. One read per chunk matters:
// v0.12's file reader inflates from the start of the chunk's gzip member on
// every ReadAt, so small sequential reads cost O(chunk size) each.
func readChunks(sr *io.SectionReader, chunks []*estargz.TOCEntry, fn func(ce *estargz.TOCEntry, data []byte) error) error {
	var buf []byte
	for _, ce := range chunks {
		if int64(cap(buf)) < ce.ChunkSize {
			buf = make([]byte, ce.ChunkSize)
		}
		data := buf[:ce.ChunkSize]
		n, err := sr.ReadAt(data, ce.ChunkOffset)
		if err == io.EOF && n == len(data) {
			err = nil
		}
		if err != nil {
			return fmt.Errorf("reading chunk at %d: %w", ce.ChunkOffset, err)
		}
		if err := fn(ce, data); err != nil {
			return err
		}
	}
	return nil
}

// ---- build ----

func cmdBuild(args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	chunkSize := fs.Int("chunk-size", 0, "chunk size (0 = library default, 4 MiB)")
	level := fs.Int("level", -100, "gzip compression level (default: library default, 9)")
	prioritized := fs.String("prioritized", "", "comma-separated prioritized files")
	allowMissing := fs.Bool("allow-missing", false, "allow prioritized files missing from the input")
	procs := fs.Int("procs", 1, "GOMAXPROCS during Build (its parallelism and hence its output depend on it)")
	zstdChunked := fs.Bool("zstdchunked", false, "write zstd:chunked (estargz/zstdchunked) instead of gzip")
	pos, err := parseArgs(fs, args, 2)
	if err != nil {
		return err
	}
	in, outPath := pos[0], pos[1]

	// Build splits the input into GOMAXPROCS parts, which changes the blob;
	// pin it so that builds are reproducible.
	if *procs < 1 {
		return fmt.Errorf("--procs must be >= 1")
	}
	runtime.GOMAXPROCS(*procs)

	var opts []estargz.Option
	if *chunkSize != 0 {
		opts = append(opts, estargz.WithChunkSize(*chunkSize))
	}
	// -100 means "not given"; any other value (including 0 and -1) is passed.
	if *level != -100 {
		opts = append(opts, estargz.WithCompressionLevel(*level))
	}
	if *prioritized != "" {
		opts = append(opts, estargz.WithPrioritizedFiles(strings.Split(*prioritized, ",")))
	}
	var missed []string
	if *allowMissing {
		opts = append(opts, estargz.WithAllowPrioritizeNotFound(&missed))
	}
	var zstdMetadata map[string]string
	if *zstdChunked {
		zstdMetadata = map[string]string{}
		opts = append(opts, estargz.WithCompression(zstdCompression(*level, zstdMetadata)))
	}

	inF, err := os.Open(in)
	if err != nil {
		return err
	}
	defer inF.Close()
	st, err := inF.Stat()
	if err != nil {
		return err
	}
	outF, err := os.Create(outPath)
	if err != nil {
		return err
	}
	defer outF.Close()

	start := time.Now()
	blob, err := estargz.Build(io.NewSectionReader(inF, 0, st.Size()), opts...)
	if err != nil {
		return fmt.Errorf("estargz.Build: %w", err)
	}
	// The blob is streamed: the blob digest is computed while copying, and
	// DiffID is only valid once the stream has been fully read.
	blobHash := sha256.New()
	size, err := io.Copy(io.MultiWriter(outF, blobHash), blob)
	if cerr := blob.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing blob: %w", err)
	}
	elapsed := time.Since(start).Seconds()
	if err := outF.Close(); err != nil {
		return err
	}

	res := map[string]interface{}{
		"toc_digest":  blob.TOCDigest().String(),
		"diff_id":     blob.DiffID().String(),
		"blob_digest": "sha256:" + hex.EncodeToString(blobHash.Sum(nil)),
		"size":        size,
		"seconds":     elapsed,
	}
	if *allowMissing {
		if missed == nil {
			missed = []string{}
		}
		res["missed_prioritized"] = missed
	}
	if zstdMetadata != nil {
		res["zstd_metadata"] = zstdMetadata
	}
	return printJSON(res)
}

// zstdChunked pairs the zstdchunked compressor and decompressor into the
// estargz.Compression that Build and the Writer take.
type zstdChunked struct {
	*zstdchunked.Compressor
	*zstdchunked.Decompressor
}

// zstdCompression is zstd:chunked at a zstd level (-100: the default,
// SpeedDefault); the manifest annotations are written into metadata.
func zstdCompression(level int, metadata map[string]string) estargz.Compression {
	encoderLevel := zstd.SpeedDefault
	if level != -100 {
		encoderLevel = zstd.EncoderLevelFromZstd(level)
	}
	return &zstdChunked{
		&zstdchunked.Compressor{CompressionLevel: encoderLevel, Metadata: metadata},
		&zstdchunked.Decompressor{},
	}
}

// ---- append (Writer) ----

// cmdAppend writes a blob with the streaming Writer: AppendTar, or
// AppendTarLossLess with --lossless (the decompressed payload before the
// TOC is then the input tar byte for byte).
func cmdAppend(args []string) error {
	fs := flag.NewFlagSet("append", flag.ContinueOnError)
	chunkSize := fs.Int("chunk-size", 0, "chunk size (0 = library default, 4 MiB)")
	level := fs.Int("level", -100, "gzip or zstd level (default: the compressor's default)")
	lossless := fs.Bool("lossless", false, "AppendTarLossLess instead of AppendTar")
	zstdChunked := fs.Bool("zstdchunked", false, "write zstd:chunked instead of gzip")
	pos, err := parseArgs(fs, args, 2)
	if err != nil {
		return err
	}
	inF, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer inF.Close()
	outF, err := os.Create(pos[1])
	if err != nil {
		return err
	}
	defer outF.Close()
	blobHash := sha256.New()
	var compressor estargz.Compressor
	zstdMetadata := map[string]string{}
	switch {
	case *zstdChunked:
		compressor = zstdCompression(*level, zstdMetadata)
	case *level != -100:
		compressor = estargz.NewGzipCompressorWithLevel(*level)
	default:
		compressor = estargz.NewGzipCompressor()
	}
	w := estargz.NewWriterWithCompressor(io.MultiWriter(outF, blobHash), compressor)
	w.ChunkSize = *chunkSize
	if *lossless {
		err = w.AppendTarLossLess(inF)
	} else {
		err = w.AppendTar(inF)
	}
	if err != nil {
		return err
	}
	tocDigest, err := w.Close()
	if err != nil {
		return err
	}
	if err := outF.Close(); err != nil {
		return err
	}
	res := map[string]interface{}{
		"toc_digest":  tocDigest.String(),
		"diff_id":     w.DiffID(),
		"blob_digest": "sha256:" + hex.EncodeToString(blobHash.Sum(nil)),
	}
	if *zstdChunked {
		res["zstd_metadata"] = zstdMetadata
	}
	return printJSON(res)
}

// ---- unpack ----

// cmdUnpack writes estargz.Unpack's output (the decompressed payload before
// the TOC) to OUT. The decompressor is the one whose footer fits the blob:
// zstd:chunked when it ends in its magic, else eStargz gzip.
func cmdUnpack(args []string) error {
	fs := flag.NewFlagSet("unpack", flag.ContinueOnError)
	pos, err := parseArgs(fs, args, 2)
	if err != nil {
		return err
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	sr := io.NewSectionReader(f, 0, st.Size())
	var decompressor estargz.Decompressor = new(estargz.GzipDecompressor)
	magic := make([]byte, 8)
	if _, err := sr.ReadAt(magic, st.Size()-8); err == nil && string(magic) == "GnUlInUx" {
		decompressor = new(zstdchunked.Decompressor)
	}
	rc, err := estargz.Unpack(sr, decompressor)
	if err != nil {
		return fmt.Errorf("estargz.Unpack: %w", err)
	}
	defer rc.Close()
	out, err := os.Create(pos[1])
	if err != nil {
		return err
	}
	defer out.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), rc)
	if err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return printJSON(map[string]interface{}{
		"size":   n,
		"sha256": "sha256:" + hex.EncodeToString(h.Sum(nil)),
	})
}

// ---- verify ----

func cmdVerify(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	tocDigest := fs.String("toc-digest", "", "expected TOC digest (default: the one Open computed)")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	r, closeFn, err := openBlob(pos[0])
	if err != nil {
		return err
	}
	defer closeFn()

	want := r.TOCDigest()
	if *tocDigest != "" {
		d, err := digest.Parse(*tocDigest)
		if err != nil {
			return fmt.Errorf("--toc-digest: %w", err)
		}
		want = d
	}

	res := struct {
		OK             bool     `json:"ok"`
		TOCDigest      string   `json:"toc_digest"`
		Files          int      `json:"files"`
		EmptyFiles     int      `json:"empty_files"`
		Chunks         int      `json:"chunks"`
		Bytes          int64    `json:"bytes"`
		Errors         []string `json:"errors"`
		VerifyTOCError string   `json:"verify_toc_error,omitempty"`
	}{TOCDigest: r.TOCDigest().String(), Errors: []string{}}

	ev, err := r.VerifyTOC(want)
	if err != nil {
		res.VerifyTOCError = err.Error()
		res.Errors = append(res.Errors, "VerifyTOC: "+err.Error())
	} else {
		res.Errors = append(res.Errors, verifyContents(r, ev, &res.Files, &res.EmptyFiles, &res.Chunks, &res.Bytes)...)
	}
	res.OK = len(res.Errors) == 0
	if err := printJSON(res); err != nil {
		return err
	}
	if !res.OK {
		os.Exit(1)
	}
	return nil
}

// verifyContents reads every chunk of every regular file through the chunk
// verifier VerifyTOC returned, and compares each whole file with its
// "digest". It returns the list of problems found.
func verifyContents(r *estargz.Reader, ev estargz.TOCEntryVerifier, files, empty, nchunks *int, nbytes *int64) []string {
	var errs []string
	regs, err := regularFiles(r)
	if err != nil {
		return []string{err.Error()}
	}
	for _, name := range sortedNames(regs) {
		ent := regs[name]
		*files++
		if ent.Size == 0 {
			*empty++
		}
		sr, err := r.OpenFile(name)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: OpenFile: %v", name, err))
			continue
		}
		chunks, err := chunksOf(r, ent)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		fileHash := sha256.New()
		err = readChunks(sr, chunks, func(ce *estargz.TOCEntry, data []byte) error {
			v, err := ev.Verifier(ce)
			if err != nil {
				return fmt.Errorf("chunk at %d: %w", ce.ChunkOffset, err)
			}
			v.Write(data)
			fileHash.Write(data)
			if !v.Verified() {
				return fmt.Errorf("chunk at %d (blob offset %d): digest mismatch", ce.ChunkOffset, ce.Offset)
			}
			*nchunks++
			*nbytes += int64(len(data))
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		got := "sha256:" + hex.EncodeToString(fileHash.Sum(nil))
		if ent.Digest == "" {
			errs = append(errs, fmt.Sprintf("%s: no digest in TOC", name))
		} else if got != ent.Digest {
			errs = append(errs, fmt.Sprintf("%s: file digest %s, TOC says %s", name, got, ent.Digest))
		}
	}
	return errs
}

// ---- files / cat ----

type fileInfo struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Type   string `json:"type"`
	Chunks int    `json:"chunks"`
}

func cmdFiles(args []string) error {
	fs := flag.NewFlagSet("files", flag.ContinueOnError)
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	r, closeFn, err := openBlob(pos[0])
	if err != nil {
		return err
	}
	defer closeFn()
	regs, err := regularFiles(r)
	if err != nil {
		return err
	}
	out := make(map[string]fileInfo, len(regs))
	for _, name := range sortedNames(regs) {
		ent := regs[name]
		sr, err := r.OpenFile(name)
		if err != nil {
			return fmt.Errorf("%s: OpenFile: %w", name, err)
		}
		chunks, err := chunksOf(r, ent)
		if err != nil {
			return err
		}
		h := sha256.New()
		var n int64
		err = readChunks(sr, chunks, func(_ *estargz.TOCEntry, data []byte) error {
			h.Write(data)
			n += int64(len(data))
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if n != ent.Size {
			return fmt.Errorf("%s: read %d bytes, TOC size %d", name, n, ent.Size)
		}
		out[name] = fileInfo{
			Size:   n,
			SHA256: "sha256:" + hex.EncodeToString(h.Sum(nil)),
			Type:   ent.Type,
			Chunks: len(chunks),
		}
	}
	return printJSON(out)
}

func cmdCat(args []string) error {
	fs := flag.NewFlagSet("cat", flag.ContinueOnError)
	pos, err := parseArgs(fs, args, 2)
	if err != nil {
		return err
	}
	r, closeFn, err := openBlob(pos[0])
	if err != nil {
		return err
	}
	defer closeFn()
	sr, err := r.OpenFile(pos[1])
	if err != nil {
		return err
	}
	_, err = io.Copy(os.Stdout, sr)
	return err
}

// ---- bench ----

func cmdBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	what := fs.String("what", "", "open | readall | readsome")
	namesFile := fs.String("names-file", "", "file names to read for readsome, one per line")
	repeat := fs.Int("repeat", 5, "number of timed repetitions")
	chunkReads := fs.Bool("chunk-reads", false, "read each chunk with one ReadAt instead of io.Copy")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	if *repeat < 1 {
		return errors.New("--repeat must be >= 1")
	}
	blobPath := pos[0]

	var names []string
	switch *what {
	case "open", "readall":
	case "readsome":
		if *namesFile == "" {
			return errors.New("readsome needs --names-file")
		}
		data, err := os.ReadFile(*namesFile)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(data), "\n") {
			if l = strings.TrimRight(l, "\r"); l != "" {
				names = append(names, l)
			}
		}
	default:
		return fmt.Errorf("--what must be open, readall or readsome, not %q", *what)
	}

	// Each repetition does what a user of the library does: open the file,
	// estargz.Open it (footer + TOC parse) and, for the read modes, read
	// whole files through OpenFile.
	secs := make([]float64, 0, *repeat)
	for i := 0; i < *repeat; i++ {
		start := time.Now()
		r, closeFn, err := openBlob(blobPath)
		if err != nil {
			return err
		}
		toRead := names
		if *what == "readall" {
			regs, err := regularFiles(r)
			if err != nil {
				return err
			}
			toRead = sortedNames(regs)
		}
		if *what != "open" {
			for _, name := range toRead {
				if err := readWhole(r, name, *chunkReads); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
			}
		}
		elapsed := time.Since(start).Seconds()
		if err := closeFn(); err != nil {
			return err
		}
		secs = append(secs, elapsed)
	}

	sorted := append([]float64(nil), secs...)
	sort.Float64s(sorted)
	median := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		median = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	return printJSON(map[string]interface{}{
		"what":    *what,
		"repeat":  *repeat,
		"seconds": secs,
		"median":  median,
	})
}

// readWhole reads a whole file and discards it. By default it uses io.Copy
// like a typical caller; io.Discard reads 8 KiB at a time and each ReadAt
// re-inflates the chunk's gzip member from its start, so large chunks are
// read in quadratic time. chunkReads reads each chunk with one ReadAt
// instead, the way stargz-snapshotter's filesystem fetches chunks.
func readWhole(r *estargz.Reader, name string, chunkReads bool) error {
	sr, err := r.OpenFile(name)
	if err != nil {
		return fmt.Errorf("OpenFile: %w", err)
	}
	if !chunkReads {
		_, err = io.Copy(io.Discard, sr)
		return err
	}
	ent, ok := r.Lookup(name)
	if !ok {
		return errors.New("not found")
	}
	chunks, err := chunksOf(r, ent)
	if err != nil {
		return err
	}
	return readChunks(sr, chunks, func(*estargz.TOCEntry, []byte) error { return nil })
}

// ---- tarsplit ----

// cmdTarSplit writes the tar-split JSON-lines stream of a tar (what
// containers/storage's zstd:chunked stores, compressed, in a skippable frame)
// as vbatts/tar-split's asm.NewInputTarStream and storage.NewJSONPacker make it.
func cmdTarSplit(args []string) error {
	fs := flag.NewFlagSet("tarsplit", flag.ContinueOnError)
	pos, err := parseArgs(fs, args, 2)
	if err != nil {
		return err
	}
	in, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(pos[1])
	if err != nil {
		return err
	}
	defer out.Close()
	stream, err := asm.NewInputTarStream(in, storage.NewJSONPacker(out), nil)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, stream)
	if err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return printJSON(map[string]interface{}{"tar_bytes": n})
}
