package userstore

import (
	"time"

	"github.com/google/uuid"
)

// ApplicationKind is the kind of client an application is.
type ApplicationKind string

// Application kinds.
const (
	AppWeb     ApplicationKind = "web"
	AppNative  ApplicationKind = "native"
	AppService ApplicationKind = "service"
)

// ApplicationStatus is the lifecycle state of an application.
type ApplicationStatus string

// Application statuses. Deleted is terminal: it releases the client key and removes the bindings.
const (
	AppActive   ApplicationStatus = "active"
	AppDisabled ApplicationStatus = "disabled"
	AppDeleted  ApplicationStatus = "deleted"
)

// Application is a client registered in a tenant.
type Application struct {
	ID       uuid.UUID
	TenantID uuid.UUID
	Name     string
	// ClientKey is unique per tenant, [A-Za-z0-9._~-]{1,255}, compared exactly. Empty once deleted.
	ClientKey string
	Kind      ApplicationKind
	Status    ApplicationStatus
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// RegisterApplicationParams registers an application.
type RegisterApplicationParams struct {
	Mutation
	// ID is the new application's id. Default: a new UUIDv7.
	ID        uuid.UUID
	Name      string
	ClientKey string
	Kind      ApplicationKind
}

// UpdateApplicationParams changes an application's name and kind.
type UpdateApplicationParams struct {
	Mutation
	ID              uuid.UUID
	Name            string
	Kind            ApplicationKind
	ExpectedVersion int64
}

// ApplicationParams targets one application (disable, enable, delete).
type ApplicationParams struct {
	Mutation
	ID              uuid.UUID
	ExpectedVersion int64
}

// ListApplicationsParams lists the tenant's applications in id order.
type ListApplicationsParams struct {
	ListOpts
	// Status filters by status. Default: active and disabled (not deleted).
	Status ApplicationStatus
}
