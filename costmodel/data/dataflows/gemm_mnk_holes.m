// GEMM, output-row parallel with a spatially split reduction: ?n columns of the output (N) per
// cluster across clusters; each cluster of ?p PEs splits a ?p-long slice of the reduction (K) one
// element per PE and reduces spatially; ?m rows (M) per step. gemm_mnk.m is this dataflow with
// ?n = 1, ?p = 64, ?m = 1.
// Holes: ?n (output-column tile), ?p (PEs per cluster = reduction slice), ?m (output-row tile).
// Source: the GEMM mapping style of Kwon et al., MICRO 2019 (MAESTRO), with its sizes as holes.
Dataflow {
	SpatialMap(?n,?n) N;
	TemporalMap(?p,?p) K;
	TemporalMap(?m,?m) M;
	Cluster(?p, P);
	SpatialMap(1,1) K;
	TemporalMap(?m,?m) M;
}
