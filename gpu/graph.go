//go:build !nocuda

package gpu

// Step graphs: record the launches of a training step and replay them as one CUDA
// graph, patching the parameters that changed since the graph was built.
//
// A step's launches are the same kernels with the same geometry every step, but some
// parameters change (Philox offsets, the gather position, the learning rate, Adam's
// step): see "CUDA graphs" in docs/ARCHITECTURE.md. So instead of capturing a stream,
// the backend records each launch (kernel, geometry, parameter values) between
// BeginStep and EndStep without launching it, then submits the recording as a graph:
// the first time a sequence is seen, a graph of kernel nodes in a chain is built and
// instantiated; when the same sequence comes again, only the nodes whose parameters
// differ are updated (cuGraphExecKernelNodeSetParams) before cuGraphLaunch. Anything
// that must see the queued work in order (Upload, Download, Sync, Alloc, timing)
// submits what was recorded first, so a step with an upload in the middle becomes two
// graphs; a few sequences are cached.

/*
#include <stdlib.h>
#include <string.h>
#include <cuda.h>

static CUresult gantrainAddKernelNode(CUgraphNode *node, CUgraph g, const CUgraphNode *dep, size_t ndep,
		CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
		unsigned shared, void **params) {
	CUDA_KERNEL_NODE_PARAMS p;
	memset(&p, 0, sizeof p);
	p.func = f;
	p.gridDimX = gx; p.gridDimY = gy; p.gridDimZ = gz;
	p.blockDimX = bx; p.blockDimY = by; p.blockDimZ = bz;
	p.sharedMemBytes = shared;
	p.kernelParams = params;
	return cuGraphAddKernelNode(node, g, dep, ndep, &p);
}

static CUresult gantrainSetKernelNode(CUgraphExec e, CUgraphNode node,
		CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
		unsigned shared, void **params) {
	CUDA_KERNEL_NODE_PARAMS p;
	memset(&p, 0, sizeof p);
	p.func = f;
	p.gridDimX = gx; p.gridDimY = gy; p.gridDimZ = gz;
	p.blockDimX = bx; p.blockDimY = by; p.blockDimZ = bz;
	p.sharedMemBytes = shared;
	p.kernelParams = params;
	return cuGraphExecKernelNodeSetParams(e, node, &p);
}

static void **gantrainParamArray(unsigned long long *vals, int n) {
	void **p = (void **)malloc(n * sizeof(void *));
	for (int i = 0; i < n; i++) p[i] = &vals[i];
	return p;
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/gantrain/gantrain/kernels"
)

// maxGraphs bounds the cached step graphs (a step, an observed step, the two halves
// of a step with an epoch's upload, …).
const maxGraphs = 8

// recLaunch is one recorded launch.
type recLaunch struct {
	fn     cu.Function
	grid   [3]uint32
	block  [3]uint32
	shared uint32
	nargs  int
	args   [maxArgs]uint64
}

// sameShape reports whether r and o launch the same kernel with the same geometry.
func (r *recLaunch) sameShape(o *recLaunch) bool {
	return r.fn == o.fn && r.grid == o.grid && r.block == o.block && r.shared == o.shared && r.nargs == o.nargs
}

// stepGraph is one instantiated graph and the launches its nodes hold now.
type stepGraph struct {
	graph C.CUgraph
	exec  C.CUgraphExec
	nodes []C.CUgraphNode
	holds []recLaunch
	used  uint64 // for eviction: the submission count when last used
}

// graphs is a backend's step-graph state.
type graphs struct {
	recording bool
	rec       []recLaunch
	cache     map[uint64][]*stepGraph // by the hash of the launch shapes
	count     int
	clock     uint64
	vals      *C.ulonglong   // C memory: one launch's parameter values
	ptrs      unsafe.Pointer // C memory: pointers to vals[i] (void **)
	stats     GraphStats
}

// GraphStats count what the step graphs did.
type GraphStats struct {
	Submitted int // recordings submitted as a graph launch
	Built     int // graphs built and instantiated
	Launches  int // kernel launches recorded
	Updates   int // kernel nodes whose parameters were updated before a replay
}

func newGraphs() *graphs {
	g := &graphs{cache: map[uint64][]*stepGraph{}}
	g.vals = (*C.ulonglong)(C.malloc(C.size_t(maxArgs * 8)))
	g.ptrs = unsafe.Pointer(C.gantrainParamArray(g.vals, C.int(maxArgs)))
	return g
}

// BeginStep starts recording launches for a step graph, when Options.Graphs is set
// (otherwise, and while kernel timing is on, it does nothing). Operations queue
// nothing until EndStep, or until an operation that must see the queued work.
func (b *Backend) BeginStep() {
	if b.graphs == nil || b.timer != nil || !b.open {
		return
	}
	b.flush() // a step begun without the last one ended
	b.graphs.recording = true
	b.graphs.rec = b.graphs.rec[:0]
}

// EndStep submits the launches recorded since BeginStep as one graph launch and stops
// recording. It returns the first recorded error.
func (b *Backend) EndStep() error {
	if b.graphs == nil || !b.graphs.recording {
		return b.Failed()
	}
	b.flush()
	b.graphs.recording = false
	return b.Failed()
}

// GraphStats returns what the step graphs did so far (zero without Options.Graphs).
func (b *Backend) GraphStats() GraphStats {
	if b.graphs == nil {
		return GraphStats{}
	}
	return b.graphs.stats
}

// record stores a launch instead of queueing it; the caller holds the context.
func (g *graphs) record(fn cu.Function, l *kernels.Launch) {
	g.rec = append(g.rec, recLaunch{fn: fn, grid: l.Grid, block: l.Block, shared: l.SharedBytes, nargs: len(l.Args)})
	r := &g.rec[len(g.rec)-1]
	for i, a := range l.Args {
		r.args[i] = a.Bits
	}
	g.stats.Launches++
}

// flush submits what was recorded (recording goes on); it takes the context itself.
func (b *Backend) flush() {
	g := b.graphs
	if g == nil || len(g.rec) == 0 {
		return
	}
	defer func() { g.rec = g.rec[:0] }()
	if b.Failed() != nil {
		return
	}
	defer leave()
	if err := b.enter(); err != nil {
		b.Fail(err)
		return
	}
	if err := b.submit(); err != nil {
		b.Fail(fmt.Errorf("%s: step graph of %d launches: %w", b.where(), len(g.rec), err))
	}
}

// submit launches g.rec as a graph; the caller holds the context.
func (b *Backend) submit() error {
	g := b.graphs
	h := uint64(14695981039346656037)
	mix := func(v uint64) { h = (h ^ v) * 1099511628211 }
	for i := range g.rec {
		r := &g.rec[i]
		mix(uint64(uintptr(unsafe.Pointer(cFunction(r.fn)))))
		mix(uint64(r.grid[0]) | uint64(r.grid[1])<<21 | uint64(r.grid[2])<<42)
		mix(uint64(r.block[0]) | uint64(r.block[1])<<21 | uint64(r.block[2])<<42)
		mix(uint64(r.shared)<<8 | uint64(r.nargs))
	}
	g.clock++
	var sg *stepGraph
	for _, c := range g.cache[h] {
		if len(c.holds) == len(g.rec) && sameShapes(c.holds, g.rec) {
			sg = c
			break
		}
	}
	if sg == nil {
		var err error
		if sg, err = b.build(); err != nil {
			return err
		}
		// Mark it used before evicting: with used still 0 the new graph is the least
		// recently used, and the 9th distinct sequence would destroy its own graph and
		// then launch the destroyed exec.
		sg.used = g.clock
		g.cache[h] = append(g.cache[h], sg)
		g.count++
		g.evict()
	} else {
		for i := range g.rec {
			r, held := &g.rec[i], &sg.holds[i]
			if r.args == held.args {
				continue
			}
			if err := g.setNode(sg, i, r); err != nil {
				return fmt.Errorf("update node %d: %w", i, err)
			}
			held.args = r.args
			g.stats.Updates++
		}
	}
	sg.used = g.clock
	g.stats.Submitted++
	return check(C.cuGraphLaunch(sg.exec, cStream(b.stream)))
}

func sameShapes(a, b []recLaunch) bool {
	for i := range a {
		if !a[i].sameShape(&b[i]) {
			return false
		}
	}
	return true
}

// build makes a graph of g.rec's launches in a chain and instantiates it.
func (b *Backend) build() (*stepGraph, error) {
	g := b.graphs
	sg := &stepGraph{holds: append([]recLaunch(nil), g.rec...), nodes: make([]C.CUgraphNode, len(g.rec))}
	if err := check(C.cuGraphCreate(&sg.graph, 0)); err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	for i := range g.rec {
		r := &g.rec[i]
		g.load(r)
		var dep *C.CUgraphNode
		var ndep C.size_t
		if i > 0 {
			dep, ndep = &sg.nodes[i-1], 1
		}
		if err := check(C.gantrainAddKernelNode(&sg.nodes[i], sg.graph, dep, ndep, cFunction(r.fn),
			C.uint(r.grid[0]), C.uint(r.grid[1]), C.uint(r.grid[2]),
			C.uint(r.block[0]), C.uint(r.block[1]), C.uint(r.block[2]),
			C.uint(r.shared), (*unsafe.Pointer)(g.ptrs))); err != nil {
			sg.destroy()
			return nil, fmt.Errorf("add node %d: %w", i, err)
		}
	}
	if err := check(C.cuGraphInstantiateWithFlags(&sg.exec, sg.graph, 0)); err != nil {
		sg.destroy()
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	g.stats.Built++
	return sg, nil
}

// load copies r's parameter values into the C parameter buffer.
func (g *graphs) load(r *recLaunch) {
	vals := unsafe.Slice((*uint64)(unsafe.Pointer(g.vals)), maxArgs)
	copy(vals, r.args[:r.nargs])
}

func (g *graphs) setNode(sg *stepGraph, i int, r *recLaunch) error {
	g.load(r)
	return check(C.gantrainSetKernelNode(sg.exec, sg.nodes[i], cFunction(r.fn),
		C.uint(r.grid[0]), C.uint(r.grid[1]), C.uint(r.grid[2]),
		C.uint(r.block[0]), C.uint(r.block[1]), C.uint(r.block[2]),
		C.uint(r.shared), (*unsafe.Pointer)(g.ptrs)))
}

// evict destroys the least recently used graph beyond maxGraphs. A graph still running
// may be destroyed: cuGraphExecDestroy lets queued launches finish.
func (g *graphs) evict() {
	for g.count > maxGraphs {
		var oldKey uint64
		oldAt := -1
		for k, list := range g.cache {
			for i, sg := range list {
				if oldAt < 0 || sg.used < g.cache[oldKey][oldAt].used {
					oldKey, oldAt = k, i
				}
			}
		}
		list := g.cache[oldKey]
		list[oldAt].destroy()
		g.cache[oldKey] = append(list[:oldAt], list[oldAt+1:]...)
		if len(g.cache[oldKey]) == 0 {
			delete(g.cache, oldKey)
		}
		g.count--
	}
}

func (sg *stepGraph) destroy() {
	if sg.exec != nil {
		C.cuGraphExecDestroy(sg.exec)
		sg.exec = nil
	}
	if sg.graph != nil {
		C.cuGraphDestroy(sg.graph)
		sg.graph = nil
	}
}

// free destroys every graph and the parameter buffers; the caller holds the context.
func (g *graphs) free() {
	for _, list := range g.cache {
		for _, sg := range list {
			sg.destroy()
		}
	}
	g.cache, g.count = map[uint64][]*stepGraph{}, 0
	C.free(g.ptrs)
	C.free(unsafe.Pointer(g.vals))
	g.ptrs, g.vals = nil, nil
}
