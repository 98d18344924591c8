// Weight-stationary GEMM (the KC-P dataflow's analogue for A (M x K) times B (K x N)): output columns
// N across PE clusters, the reduction dimension K across the 64 PEs of a cluster, rows M of A in time,
// so a K x N tile of B stays in the PEs while the rows of A stream past; partial sums are reduced
// across each cluster. Keeps the PEs busy for matrix-vector products (M = 1, LLM decode) as well.
// Our own template (dataflow-dse), after Kwon et al., MICRO 2019 (KC-P with K -> N, C -> K, Y/X -> M).
Dataflow {
	SpatialMap(1,1) N;
	TemporalMap(64,64) K;
	TemporalMap(1,1) M;
	Cluster(64, P);
	SpatialMap(1,1) K;
	TemporalMap(1,1) M;
}
