package fiberstore_test

import (
	"fmt"
	"io"
	"net/http/httptest"

	"github.com/gofiber/fiber/v3"
	"github.com/gofiber/fiber/v3/middleware/session"

	"github.com/tierstore/tierstore/adapters/fiberstore"
	"github.com/tierstore/tierstore/l1"
)

// Fiber v3's session middleware on a tierstore store (memory only here;
// a tiered.Store in production). Fiber v2's takes the same Storage.
func ExampleNew() {
	store, _ := l1.New(l1.Config{})
	defer store.Close()

	app := fiber.New()
	app.Use(session.New(session.Config{Storage: fiberstore.New(store)}))
	app.Post("/cart", func(c fiber.Ctx) error {
		session.FromContext(c).Set("cart", "tea")
		return nil
	})
	app.Get("/cart", func(c fiber.Ctx) error {
		return c.SendString(fmt.Sprint(session.FromContext(c).Get("cart")))
	})

	put, _ := app.Test(httptest.NewRequest("POST", "/cart", nil))
	get := httptest.NewRequest("GET", "/cart", nil)
	get.AddCookie(put.Cookies()[0])
	resp, _ := app.Test(get)
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output: tea
}
