package engine

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/netkingdom/userstore"
)

var (
	mutationType = reflect.TypeFor[userstore.Mutation]()
	uuidType     = reflect.TypeFor[uuid.UUID]()
	timeType     = reflect.TypeFor[time.Time]()
)

// RequestHash returns the hash recorded with an idempotency key: lower-case hex SHA-256 of a canonical
// encoding of the operation name, the resolved tenant and actor, and the params as the caller gave them
// — without the embedded Mutation, so without the request id (a retry may carry a new one) and the key
// itself. The encoding writes each exported, non-zero field as its name and value (length-prefixed
// strings, decimal numbers, canonical UUIDs, RFC 3339 UTC times, slices in order, maps by sorted key);
// zero fields (and empty slices and maps) are skipped, so that a field added to a params struct later
// does not change the hash of requests that do not use it.
func RequestHash(operation string, tenantID uuid.UUID, actor userstore.Actor, params any) string {
	c := canon{h: sha256.New()}
	c.str(operation)
	c.str(tenantID.String())
	c.str(string(actor.Type))
	c.str(actor.ID)
	c.value(reflect.ValueOf(params))
	return hex.EncodeToString(c.h.Sum(nil))
}

type canon struct{ h hash.Hash }

func (c canon) tag(b byte) { c.h.Write([]byte{b}) }

func (c canon) str(s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	c.h.Write(n[:])
	c.h.Write([]byte(s))
}

func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		return v.Len() == 0
	}
	return v.IsZero()
}

func (c canon) value(v reflect.Value) {
	switch v.Kind() {
	case reflect.Invalid:
		c.tag('n')
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			c.tag('n')
			return
		}
		c.value(v.Elem())
	case reflect.Struct:
		if v.Type() == timeType {
			c.tag('t')
			c.str(v.Interface().(time.Time).UTC().Format(time.RFC3339Nano))
			return
		}
		c.tag('{')
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Type == mutationType || isEmpty(v.Field(i)) {
				continue
			}
			c.str(f.Name)
			c.value(v.Field(i))
		}
		c.tag('}')
	case reflect.Array:
		if v.Type() == uuidType {
			c.tag('u')
			c.str(v.Interface().(uuid.UUID).String())
			return
		}
		c.list(v)
	case reflect.Slice:
		c.list(v)
	case reflect.Map:
		c.tag('m')
		c.str(strconv.Itoa(v.Len()))
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(keyString(a), keyString(b)) })
		for _, k := range keys {
			c.value(k)
			c.value(v.MapIndex(k))
		}
	case reflect.String:
		c.tag('s')
		c.str(v.String())
	case reflect.Bool:
		c.tag('b')
		c.str(strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		c.tag('i')
		c.str(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		c.tag('u')
		c.str(strconv.FormatUint(v.Uint(), 10))
	case reflect.Float32, reflect.Float64:
		c.tag('f')
		c.str(strconv.FormatFloat(v.Float(), 'g', -1, 64))
	default:
		c.tag('?')
		c.str(v.Type().String())
	}
}

func (c canon) list(v reflect.Value) {
	c.tag('[')
	c.str(strconv.Itoa(v.Len()))
	for i := range v.Len() {
		c.value(v.Index(i))
	}
	c.tag(']')
}

// keyString orders map keys; the params only have string keys.
func keyString(k reflect.Value) string {
	if k.Kind() == reflect.String {
		return k.String()
	}
	return k.Type().String()
}
