package gpu

import "fmt"

// Type is the type of a kernel value.
type Type uint8

const (
	I32  Type = iota // 32-bit signed integer
	F32              // IEEE float32
	Pred             // predicate (comparison result)
)

// Expr is an expression of the kernel IR.
type Expr interface{ typ() Type }

// Special registers.
type Special uint8

const (
	TidX  Special = iota // thread index in the block
	BidX                 // block index, x
	BidY                 // block index, y
	NTidX                // threads per block
)

// Op is the operator of a Bin expression. Arithmetic ops take two I32 or
// two F32 operands; comparisons give a Pred; And takes two Preds.
type Op uint8

const (
	Add Op = iota
	Sub
	Mul
	Div // I32 only, of the operands as unsigned (the kernels divide non-negative indices)
	Rem // I32 only, unsigned like Div
	Min
	Max
	Lt
	Le
	Ge
	Eq
	And
)

var opName = [...]string{"add", "sub", "mul", "div", "rem", "min", "max", "lt", "le", "ge", "eq", "and"}

type (
	// Int is an I32 constant.
	Int int32
	// Float is an F32 constant.
	Float float32
	// Sreg reads a special register.
	Sreg struct{ R Special }
	// Param reads an integer kernel parameter (an index into Kernel.Ints).
	Param struct{ I int }
	// Var is a mutable register; declare it with Kernel.Var.
	Var struct {
		Name string
		T    Type
		id   int
	}
	// Bin applies a binary operator.
	Bin struct {
		Op   Op
		A, B Expr
	}
	// FMA is A*B+C with one rounding (F32).
	FMA struct{ A, B, C Expr }
	// Exp2 is 2^A (F32, approximate on the device: ex2.approx).
	Exp2 struct{ A Expr }
	// Rcp is 1/A (F32, correctly rounded: rcp.rn).
	Rcp struct{ A Expr }
	// ToF32 converts an I32 to F32 (round to nearest).
	ToF32 struct{ A Expr }
	// Sel is C ? A : B.
	Sel struct{ C, A, B Expr }
	// Load reads global float Ptrs[P][Idx]; ReadOnly loads may use the
	// non-coherent cache.
	Load struct {
		P        int
		Idx      Expr
		ReadOnly bool
	}
	// LoadShared reads shared array Shared[S][Idx].
	LoadShared struct {
		S   int
		Idx Expr
	}
)

func (Int) typ() Type        { return I32 }
func (Float) typ() Type      { return F32 }
func (Sreg) typ() Type       { return I32 }
func (Param) typ() Type      { return I32 }
func (v *Var) typ() Type     { return v.T }
func (ToF32) typ() Type      { return F32 }
func (FMA) typ() Type        { return F32 }
func (Exp2) typ() Type       { return F32 }
func (Rcp) typ() Type        { return F32 }
func (Load) typ() Type       { return F32 }
func (LoadShared) typ() Type { return F32 }
func (s Sel) typ() Type      { return s.A.typ() }
func (b Bin) typ() Type {
	switch b.Op {
	case Lt, Le, Ge, Eq, And:
		return Pred
	}
	return b.A.typ()
}

// Stmt is a statement of the kernel IR.
type Stmt interface{ stmt() }

type (
	// Set assigns a register.
	Set struct {
		V *Var
		E Expr
	}
	// Store writes global float Ptrs[P][Idx] = Val.
	Store struct {
		P        int
		Idx, Val Expr
	}
	// StoreShared writes Shared[S][Idx] = Val.
	StoreShared struct {
		S        int
		Idx, Val Expr
	}
	// For runs Body for V = From; V < To; V += Step (Step > 0).
	For struct {
		V        *Var
		From, To Expr
		Step     int32
		Body     []Stmt
	}
	// If runs Then where Cond holds.
	If struct {
		Cond Expr
		Then []Stmt
	}
	// Barrier waits for every thread of the block (bar.sync 0); the
	// threads must reach it together (uniform control flow).
	Barrier struct{}
)

func (Set) stmt()         {}
func (Store) stmt()       {}
func (StoreShared) stmt() {}
func (For) stmt()         {}
func (If) stmt()          {}
func (Barrier) stmt()     {}

// Kernel is one GPU kernel: a one-dimensional block of Threads threads on
// a grid of blocks (x, y), pointer and integer parameters, shared float
// arrays and a body every thread runs.
type Kernel struct {
	Name    string
	Threads int      // threads per block
	Ptrs    []string // float pointer parameters (global memory)
	Ints    []string // int32 parameters
	Shared  []int    // shared float arrays, their lengths
	Body    []Stmt
	vars    []*Var
}

// Var declares a register of the kernel.
func (k *Kernel) Var(name string, t Type) *Var {
	v := &Var{Name: name, T: t, id: len(k.vars)}
	k.vars = append(k.vars, v)
	return v
}

// Check verifies operand types and indices.
func (k *Kernel) Check() error {
	var expr func(e Expr) error
	want := func(e Expr, t Type) error {
		if err := expr(e); err != nil {
			return err
		}
		if e.typ() != t {
			return fmt.Errorf("kernel %s: %T has type %d, expected %d", k.Name, e, e.typ(), t)
		}
		return nil
	}
	expr = func(e Expr) error {
		switch e := e.(type) {
		case Int, Float, Sreg:
			return nil
		case Param:
			if e.I < 0 || e.I >= len(k.Ints) {
				return fmt.Errorf("kernel %s: int parameter %d of %d", k.Name, e.I, len(k.Ints))
			}
		case *Var:
			if e.id >= len(k.vars) || k.vars[e.id] != e {
				return fmt.Errorf("kernel %s: register %s is not declared", k.Name, e.Name)
			}
		case Bin:
			if err := expr(e.A); err != nil {
				return err
			}
			if err := want(e.B, e.A.typ()); err != nil {
				return err
			}
			t := e.A.typ()
			switch {
			case e.Op == And && t != Pred, e.Op != And && t == Pred:
				return fmt.Errorf("kernel %s: %s on type %d", k.Name, opName[e.Op], t)
			case (e.Op == Div || e.Op == Rem) && t != I32:
				return fmt.Errorf("kernel %s: %s on floats", k.Name, opName[e.Op])
			}
		case FMA:
			for _, x := range []Expr{e.A, e.B, e.C} {
				if err := want(x, F32); err != nil {
					return err
				}
			}
		case Exp2:
			return want(e.A, F32)
		case Rcp:
			return want(e.A, F32)
		case ToF32:
			return want(e.A, I32)
		case Sel:
			if err := want(e.C, Pred); err != nil {
				return err
			}
			if err := expr(e.A); err != nil {
				return err
			}
			return want(e.B, e.A.typ())
		case Load:
			if e.P < 0 || e.P >= len(k.Ptrs) {
				return fmt.Errorf("kernel %s: pointer parameter %d of %d", k.Name, e.P, len(k.Ptrs))
			}
			return want(e.Idx, I32)
		case LoadShared:
			if e.S < 0 || e.S >= len(k.Shared) {
				return fmt.Errorf("kernel %s: shared array %d of %d", k.Name, e.S, len(k.Shared))
			}
			return want(e.Idx, I32)
		default:
			return fmt.Errorf("kernel %s: unknown expression %T", k.Name, e)
		}
		return nil
	}
	var stmts func(ss []Stmt) error
	stmts = func(ss []Stmt) error {
		for _, s := range ss {
			var err error
			switch s := s.(type) {
			case Set:
				err = want(s.E, s.V.T)
				if err == nil {
					err = expr(s.V)
				}
			case Store:
				if s.P < 0 || s.P >= len(k.Ptrs) {
					return fmt.Errorf("kernel %s: pointer parameter %d of %d", k.Name, s.P, len(k.Ptrs))
				}
				if err = want(s.Idx, I32); err == nil {
					err = want(s.Val, F32)
				}
			case StoreShared:
				if s.S < 0 || s.S >= len(k.Shared) {
					return fmt.Errorf("kernel %s: shared array %d of %d", k.Name, s.S, len(k.Shared))
				}
				if err = want(s.Idx, I32); err == nil {
					err = want(s.Val, F32)
				}
			case For:
				if s.V.T != I32 || s.Step <= 0 {
					return fmt.Errorf("kernel %s: loop over %s needs an I32 register and a positive step", k.Name, s.V.Name)
				}
				if err = want(s.From, I32); err == nil {
					if err = want(s.To, I32); err == nil {
						err = stmts(s.Body)
					}
				}
			case If:
				if err = want(s.Cond, Pred); err == nil {
					err = stmts(s.Then)
				}
			case Barrier:
			default:
				err = fmt.Errorf("kernel %s: unknown statement %T", k.Name, s)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	if k.Threads < 1 || k.Threads > 1024 {
		return fmt.Errorf("kernel %s: %d threads per block, expected 1 to 1024", k.Name, k.Threads)
	}
	return stmts(k.Body)
}
